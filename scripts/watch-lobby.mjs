#!/usr/bin/env node
// Prints lobby messages as they arrive, over graphql-ws, as a second terminal's demo:
//   node scripts/watch-lobby.mjs [ws://localhost:4000/graphql]
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const url = process.argv[2] ?? 'ws://localhost:4000/graphql';
const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: Infinity });
console.log(`subscribed to the lobby on ${url} (Ctrl-C to stop)`);
client.subscribe(
  { query: 'subscription { messageAdded { id text createdAt sender { username } } }' },
  {
    next: ({ data, errors }) => {
      if (errors) console.error(errors);
      else
        console.log(`${data.messageAdded.createdAt}  ${data.messageAdded.sender.username}: ${data.messageAdded.text}`);
    },
    error: (err) => console.error('subscription error', err),
    complete: () => console.log('completed'),
  },
);
