import { TestClient } from '../helpers/client';
import { freshDbName } from '../helpers/db';
import { startServer } from '../helpers/server';

test('identity and history survive a server restart on the same database', async () => {
  const dbName = freshDbName('restart');
  const first = await startServer({ dbName });
  const browser = new TestClient(first);
  const me = await browser.me();
  const other = new TestClient(first);
  const otherMe = await other.me();
  const lobby = await browser.data<{ sendMessage: { id: string } }>(
    'mutation { sendMessage(input: { text: "before restart" }) { id } }',
  );
  const dm = await browser.data<{ sendMessage: { id: string } }>(
    'mutation($to: ID) { sendMessage(input: { text: "dm before restart", to: $to, clientId: "k1" }) { id } }',
    { to: otherMe.id },
  );
  await first.close();

  const second = await startServer({ dbName });
  try {
    // Same cookie, new process: same identity.
    const again = new TestClient(second);
    again.cookie = browser.cookie;
    expect(await again.me()).toEqual(me);
    const page = await again.data<{ messages: { edges: Array<{ node: { id: string; text: string } }> } }>(
      '{ messages(last: 10) { edges { node { id text } } } }',
    );
    expect(page.messages.edges.map((e) => e.node)).toEqual([{ id: lobby.sendMessage.id, text: 'before restart' }]);
    const dms = await again.data<{ messages: { edges: Array<{ node: { id: string } }> } }>(
      'query($w: ID) { messages(with: $w) { edges { node { id } } } }',
      { w: otherMe.id },
    );
    expect(dms.messages.edges.map((e) => e.node.id)).toEqual([dm.sendMessage.id]);
    // Sequence numbers continue after the restart, and a retried clientId is still recognised.
    const next = await again.data<{ sendMessage: { id: string } }>(
      'mutation { sendMessage(input: { text: "after" }) { id } }',
    );
    expect(next.sendMessage.id > lobby.sendMessage.id).toBe(true);
    const retried = await again.data<{ sendMessage: { id: string } }>(
      'mutation($to: ID) { sendMessage(input: { text: "dm before restart", to: $to, clientId: "k1" }) { id } }',
      { to: otherMe.id },
    );
    expect(retried.sendMessage.id).toBe(dm.sendMessage.id);
  } finally {
    await second.close();
  }
});
