/**
 * Database commands per GraphQL operation, read from the server's own metric
 * (anonymo_graphql_operation_db_commands, counted by the driver's command monitoring) after
 * real traffic. CI runs this file with both storage strategies (DB_STRATEGY=mongodb too).
 */
import { TestClient } from '../helpers/client';
import { noSubscriptionsLeft, scrape, subscriptionsAttached } from '../helpers/metrics';
import { startServer, type TestServer } from '../helpers/server';
import { waitForValue } from '../helpers/wait';

const SEND = 'mutation SendMessage($input: SendMessageInput!) { sendMessage(input: $input) { id } }';
const PAGE =
  'query Messages($with: ID, $last: Int) { messages(with: $with, last: $last) { edges { node { id text } } } }';
const ME = 'query Me { me { id username } }';
const CONVERSATIONS = 'query Conversations { conversations { unreadCount with { id } } }';
const HISTOGRAM = 'anonymo_graphql_operation_db_commands';

interface Observed {
  count: number;
  sum: number;
  /** Observations at or below each bucket bound. */
  le: Map<string, number>;
}

/** The histogram's series for one operation name and transport. */
function observed(text: string, name: string, transport = 'http'): Observed {
  const out: Observed = { count: 0, sum: 0, le: new Map() };
  for (const line of text.split('\n')) {
    if (!line.startsWith(HISTOGRAM) || !line.includes(`name="${name}"`) || !line.includes(`transport="${transport}"`)) {
      continue;
    }
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith(`${HISTOGRAM}_count`)) out.count = value;
    else if (line.startsWith(`${HISTOGRAM}_sum`)) out.sum = value;
    else {
      const le = /le="([^"]+)"/.exec(line)?.[1];
      if (le) out.le.set(le, value);
    }
  }
  return out;
}

function total(text: string, command: string): number {
  const m = new RegExp(`^anonymo_db_commands_total\\{command="${command}"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** Runs `work` and returns the commands of each `name` operation it ran: how many ran, the most one took. */
async function measure(server: TestServer, name: string, work: () => Promise<void>) {
  const before = observed(await scrape(server), name);
  await work();
  const after = observed(await scrape(server), name);
  const ran = after.count - before.count;
  const within = (n: number) => (after.le.get(String(n)) ?? 0) - (before.le.get(String(n)) ?? 0);
  return { ran, total: after.sum - before.sum, within };
}

/** The server's `find` total once it stopped changing (work after an answer, such as its pushes, is done). */
async function settledFinds(server: TestServer, what: string): Promise<number> {
  let last = -1;
  return waitForValue(
    async () => total(await scrape(server), 'find'),
    (v: number) => {
      const still = v === last;
      last = v;
      return still;
    },
    { what, interval: 200 },
  );
}

/**
 * What `work` returned, and how many `find`s the server sent while it ran, the work after its
 * answers included (its pushes). A background job reading meanwhile only adds to the count.
 */
async function findsDuring<T>(server: TestServer, work: () => Promise<T>): Promise<{ finds: number; result: T }> {
  const before = await settledFinds(server, 'earlier work to settle');
  const result = await work();
  return { finds: (await settledFinds(server, 'the work to settle')) - before, result };
}

/**
 * Users made on another instance of the database (`there` runs there first, with them): this
 * one has nothing of theirs in memory. Returns them as clients of `server`.
 */
async function usersFromElsewhere(
  server: TestServer,
  n: number,
  there: (clients: TestClient[]) => Promise<unknown> = () => Promise.resolve(),
): Promise<TestClient[]> {
  const elsewhere = await startServer({ dbName: server.dbName, env: { DB_COMMAND_SAMPLING: '100' } });
  try {
    const made = Array.from({ length: n }, () => new TestClient(elsewhere));
    await Promise.all(made.map((c) => c.me()));
    await there(made);
    return made.map((c) => Object.assign(new TestClient(server), { cookie: c.cookie }));
  } finally {
    await elsewhere.close();
  }
}

let server: TestServer;
beforeAll(async () => {
  // Every operation counted (the default samples 10 % of the time, see db-commands.ts).
  server = await startServer({ env: { DB_COMMAND_SAMPLING: '100' } });
});
afterAll(async () => {
  await server?.close();
});

describe(`database commands per operation (strategy ${process.env.DB_STRATEGY ?? 'auto'})`, () => {
  test('a sendMessage to the lobby takes at most 3 database commands once warm', async () => {
    const alice = new TestClient(server);
    await alice.me();
    await alice.data(SEND, { input: { text: 'warm-up', clientId: 'w0' } });
    const m = await measure(server, 'SendMessage', async () => {
      for (let i = 0; i < 5; i++) await alice.data(SEND, { input: { text: `hello ${i}`, clientId: `c${i}` } });
    });
    expect(m.ran).toBe(5);
    expect(m.within(3)).toBe(5);
  });

  test('a sendMessage to a known DM partner takes at most 1 database command once warm (read markers from memory)', async () => {
    const [alice, bob] = [new TestClient(server), new TestClient(server)];
    const [, b] = await Promise.all([alice.me(), bob.me()]);
    await alice.data(SEND, { input: { text: 'first', to: b.id } });
    // Whatever the first send read after its answer is read by now.
    await settledFinds(server, 'the warm-up send to settle');
    await alice.data(SEND, { input: { text: 'second', to: b.id } });
    const finds = total(await scrape(server), 'find');
    const m = await measure(server, 'SendMessage', async () => {
      for (let i = 0; i < 5; i++) await alice.data(SEND, { input: { text: `dm ${i}`, to: b.id, clientId: `d${i}` } });
    });
    expect(m.ran).toBe(5);
    expect(m.within(1)).toBe(5);
    // Nor did the pushes that followed each send read anything (markers, heads, users).
    await alice.data(ME);
    expect(total(await scrape(server), 'find')).toBe(finds);
  });

  test('the first message between users created on another instance takes at most 8 database commands (was 9), its reads at once', async () => {
    // Users this instance knows nothing about (a restart, or a load balancer sending them
    // elsewhere before): their block lists, inboxes, stranger chats and settings are read.
    const [alice, bob, carol] = await usersFromElsewhere(server, 3);
    const [a, b, c] = await Promise.all([alice.me(), bob.me(), carol.me()]);
    // What is read once per sender, not per partner (ban and network records, her own block
    // list and inbox for her inbox notifications), is read by a first DM to someone else.
    await alice.data(SEND, { input: { text: 'hello carol', to: c.id, clientId: 'n0' } });
    const m = await measure(server, 'SendMessage', async () => {
      await alice.data(SEND, { input: { text: 'hello, new partner', to: b.id, clientId: 'n1' } });
    });
    expect(m.ran).toBe(1);
    // Read at once: the recipient's block list, the stranger-chat check, the conversation's
    // settings, its head, the recipient's inbox head (the sender's is known since her first
    // DM). Then one insert of both entries, the message, and the pair markers beside it.
    expect(m.total).toBeLessThanOrEqual(8);
    const list = await bob.data(CONVERSATIONS);
    expect(list.conversations).toEqual([{ unreadCount: 1, with: { id: a.id } }]);
  });

  test('the first message to a user this instance created reads nothing: at most 3 database commands (was 9)', async () => {
    // Three senders, each known here by an earlier DM to someone else, write to a user
    // created here. Every command is counted while each send runs; a background job (the
    // purge) can only add reads, so the fewest of the three is what a send itself reads.
    const people = Array.from({ length: 9 }, () => new TestClient(server));
    const ids = (await Promise.all(people.map((c) => c.me()))).map((u) => u.id);
    const reads: number[] = [];
    for (let k = 0; k < 3; k++) {
      const [sender, known, fresh] = [people[3 * k], ids[3 * k + 1], ids[3 * k + 2]];
      await sender.data(SEND, { input: { text: 'hello', to: known, clientId: `n${k}` } });
      const { finds, result: m } = await findsDuring(server, () =>
        measure(server, 'SendMessage', async () => {
          await sender.data(SEND, { input: { text: 'hello, new partner', to: fresh, clientId: `m${k}` } });
        }),
      );
      reads.push(finds);
      expect(m.ran).toBe(1);
      // One insert of both entries, the message, and the pair markers if they were written
      // before the answer (they gather for 25 ms).
      expect(m.total).toBeLessThanOrEqual(3);
      const [theirs, mine] = await Promise.all([people[3 * k + 2].data(CONVERSATIONS), sender.data(CONVERSATIONS)]);
      expect(theirs.conversations).toEqual([{ unreadCount: 1, with: { id: ids[3 * k] } }]);
      expect(mine.conversations.map((x: { with: { id: string } }) => x.with.id).sort()).toEqual([known, fresh].sort());
    }
    // A user created here has no blocks, inbox entries, stranger chats or conversation
    // settings yet, and this instance hears of any made elsewhere: none of them is read. Nor
    // is the conversation's head: with the recipient's inbox known empty it has no message
    // yet (the insert verifies it). Nor the read markers, known absent once number 1 is stored.
    expect(Math.min(...reads)).toBe(0);
  });

  test('first messages to 20 new DM partners at once write the inbox entries in grouped inserts; both sides list every conversation once', async () => {
    const senders = Array.from({ length: 20 }, () => new TestClient(server));
    const recipients = Array.from({ length: 20 }, () => new TestClient(server));
    const [s, r] = await Promise.all([
      Promise.all(senders.map((c) => c.me())),
      Promise.all(recipients.map((c) => c.me())),
    ]);
    await Promise.all(senders.map((c, k) => c.data(SEND, { input: { text: `warm ${k}` } })));
    const before = total(await scrape(server), 'insert');
    await Promise.all(senders.map((c, k) => c.data(SEND, { input: { text: `first ${k}`, to: r[k].id } })));
    // One by one this was 80 inserts of entries and markers alone, plus the messages.
    expect(total(await scrape(server), 'insert') - before).toBeLessThan(20);
    const lists = await Promise.all([
      ...senders.map((c) => c.data(CONVERSATIONS)),
      ...recipients.map((c) => c.data(CONVERSATIONS)),
    ]);
    for (let k = 0; k < 20; k++) {
      expect(lists[k].conversations).toEqual([{ unreadCount: 0, with: { id: r[k].id } }]);
      expect(lists[20 + k].conversations).toEqual([{ unreadCount: 1, with: { id: s[k].id } }]);
    }
  });

  test('a direct message prepares its conversationUpdated push only for a participant with a WebSocket here', async () => {
    // Three pairs whose conversations began on another instance: a push built here reads its
    // owner's read marker the first time. Each pair's first send here has nobody connected.
    const PAIRS = 3;
    const clients = await usersFromElsewhere(server, 2 * PAIRS, async (there) => {
      const ids = (await Promise.all(there.map((c) => c.me()))).map((u) => u.id);
      for (let i = 0; i < PAIRS; i++) await there[2 * i].data(SEND, { input: { text: 'hello', to: ids[2 * i + 1] } });
    });
    const ids = (await Promise.all(clients.map((c) => c.me()))).map((u) => u.id);
    const senders = clients.filter((_, i) => i % 2 === 0);
    const recipients = clients.filter((_, i) => i % 2 === 1);
    for (let i = 0; i < PAIRS; i++) await senders[i].data(SEND, { input: { text: 'here', to: ids[2 * i + 1] } });
    // Now the recipients open a tab; the senders never do.
    const UPDATED = 'subscription { conversationUpdated { unreadCount with { id } lastMessage { text } } }';
    const sockets = recipients.map((c) => c.ws());
    try {
      const sees = sockets.map((ws) => ws.subscribe(UPDATED));
      await Promise.all(sockets.map((ws) => ws.connected()));
      await subscriptionsAttached(server, PAIRS);
      const reads: number[] = [];
      for (let i = 0; i < PAIRS; i++) {
        const { finds } = await findsDuring(server, async () => {
          await senders[i].data(SEND, { input: { text: 'again', to: ids[2 * i + 1] } });
          const [update] = await sees[i].waitForCount(1);
          expect(update.conversationUpdated).toEqual({
            unreadCount: 3,
            with: { id: ids[2 * i] },
            lastMessage: { text: 'again' },
          });
        });
        reads.push(finds);
      }
      // One read per send: the recipient's marker, for his first push, none built before while
      // he had no tab (that would have read it then), and none for the sender without one
      // (that would read hers). Background jobs (the purge, presence) may read during a send:
      // the fewest of three is the sends' own.
      expect(Math.min(...reads)).toBe(1);
    } finally {
      await Promise.all(sockets.map((ws) => ws.close()));
    }
    await noSubscriptionsLeft(server);
  });

  test('messages(last: 50) of an active conversation takes at most 2 database commands', async () => {
    const alice = new TestClient(server);
    await alice.me();
    for (let i = 0; i < 60; i++) await alice.data(SEND, { input: { text: `page ${i}` } });
    const reader = new TestClient(server);
    await reader.me();
    let texts: string[] = [];
    const m = await measure(server, 'Messages', async () => {
      const page = await reader.data(PAGE, { last: 50 });
      texts = page.messages.edges.map((e: { node: { text: string } }) => e.node.text);
    });
    expect(texts).toHaveLength(50);
    expect(texts[49]).toBe('page 59');
    expect(m.ran).toBe(1);
    expect(m.within(2)).toBe(1);
  });

  test('concurrent sends are stored in fewer inserts than messages (group commit), numbered without gaps', async () => {
    const senders = Array.from({ length: 20 }, () => new TestClient(server));
    await Promise.all(senders.map((c) => c.me()));
    const before = total(await scrape(server), 'insert');
    await Promise.all(
      senders.map(async (c, k) => {
        for (let i = 0; i < 5; i++) await c.data(SEND, { input: { text: `gc ${k}-${i}`, clientId: `gc${k}-${i}` } });
      }),
    );
    const inserts = total(await scrape(server), 'insert') - before;
    expect(inserts).toBeGreaterThan(0);
    expect(inserts).toBeLessThan(100);
    const page = await senders[0].data(PAGE, { last: 100 });
    const ids: string[] = page.messages.edges.map((e: { node: { id: string } }) => e.node.id);
    const texts: string[] = page.messages.edges.map((e: { node: { text: string } }) => e.node.text);
    const seqs = ids.map((id) => Number(id.slice(id.lastIndexOf(':') + 1)));
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
    for (let k = 0; k < 20; k++) {
      expect(texts.filter((t) => t.startsWith(`gc ${k}-`))).toEqual([0, 1, 2, 3, 4].map((i) => `gc ${k}-${i}`));
    }
  });

  test('an authenticated request reads no session and writes none when the session did not change', async () => {
    const carol = new TestClient(server);
    await carol.me();
    const before = await scrape(server);
    const m = await measure(server, 'Me', async () => {
      for (let i = 0; i < 5; i++) await carol.data(ME);
    });
    const after = await scrape(server);
    expect(m.ran).toBe(5);
    expect(m.total).toBe(0);
    expect(total(after, 'update')).toBe(total(before, 'update'));
  });
});
