import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Kind, parse } from 'graphql';
import { Metrics } from '../../src/observability/metrics';
import { KNOWN_OPERATION_NAMES } from '../../src/observability/operation-names';

describe('Metrics', () => {
  test('only known operation names become labels; any other name counts as "other", however early it came', async () => {
    const metrics = new Metrics({ knownOperationNames: ['A', 'B'], processMetrics: false });
    const connection = {};
    ['C', 'A', 'B', 'A'].forEach((name, i) => {
      metrics.wsOperationStarted(connection, String(i));
      metrics.wsOperationDone(connection, String(i), parse(`query ${name} { me { id } }`));
    });
    const text = (await metrics.scrape()).body;
    const count = (name: string) =>
      Number(
        new RegExp(
          `^anonymo_graphql_operation_duration_seconds_count\\{type="query",name="${name}",transport="ws"\\} (\\d+)$`,
          'm',
        ).exec(text)?.[1] ?? 0,
      );
    expect([count('A'), count('B'), count('C'), count('other')]).toEqual([2, 1, 0, 1]);
  });

  test('every operation of the web client is a known operation name', () => {
    // operations.graphql (the chat) and moderation.graphql (the moderator view).
    const dir = path.resolve(__dirname, '../../web/src/graphql');
    const files = readdirSync(dir).filter((f) => f.endsWith('.graphql'));
    expect(files).toEqual(expect.arrayContaining(['operations.graphql', 'moderation.graphql']));
    const names = files.flatMap((f) =>
      parse(readFileSync(path.join(dir, f), 'utf8')).definitions.flatMap((d) =>
        d.kind === Kind.OPERATION_DEFINITION && d.name ? [d.name.value] : [],
      ),
    );
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((n) => !KNOWN_OPERATION_NAMES.includes(n))).toEqual([]);
  });

  test('a document that names no operation, or an invalid name, never becomes a label', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const connection = {};
    metrics.wsOperationStarted(connection, '1');
    metrics.wsOperationDone(connection, '1', parse('{ me { id } }'));
    const text = (await metrics.scrape()).body;
    expect(text).toMatch(
      /^anonymo_graphql_operation_duration_seconds_count\{type="query",name="anonymous",transport="ws"\} 1$/m,
    );
    // Process metrics are optional (off here).
    expect(text).not.toMatch(/^process_cpu/m);
  });

  test('the fan-out hook counts deliveries by topic kind and observes message latency once per event', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const createdAt = new Date(Date.now() - 1500);
    metrics.delivered(3, 'message:lobby', createdAt);
    metrics.delivered(2, 'typing:lobby');
    metrics.delivered(0, 'message:lobby', createdAt);
    const text = (await metrics.scrape()).body;
    expect(text).toMatch(/^anonymo_subscription_deliveries_total\{kind="message"\} 3$/m);
    expect(text).toMatch(/^anonymo_subscription_deliveries_total\{kind="typing"\} 2$/m);
    expect(text).toMatch(/^anonymo_message_delivery_latency_seconds_count 1$/m);
    expect(text).toMatch(/^anonymo_message_delivery_latency_seconds_bucket\{le="1"\} 0$/m);
    expect(text).toMatch(/^anonymo_message_delivery_latency_seconds_bucket\{le="2.5"\} 1$/m);
  });
});
