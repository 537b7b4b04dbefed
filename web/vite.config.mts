import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * Builds web/ into web/dist, which the server serves at `/`. `npm run dev:web` runs Vite's
 * dev server and forwards the API (HTTP and WebSocket) to a server on :4000, so the page and
 * the API share an origin there too. JSX is compiled by Vite itself (no React plugin: it
 * would only add Fast Refresh, and its peer dependencies conflict with Vite 8 under npm).
 */
const api = process.env.ANONYMO_API ?? 'http://localhost:4000';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
  },
  server: {
    proxy: {
      '/graphql': { target: api, ws: true, changeOrigin: false },
      '/avatars': { target: api },
    },
  },
});
