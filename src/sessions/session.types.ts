import 'express-session';

declare module 'express-session' {
  interface SessionData {
    /** The anonymous identity this browser was given. */
    userId: string;
  }
}
