import { parse } from 'graphql';
import { Metrics } from '../../src/observability/metrics';

describe('Metrics', () => {
  test('operation names become labels only up to the limit; the rest count as "other"', async () => {
    const metrics = new Metrics({ maxOperationNames: 2, processMetrics: false });
    const connection = {};
    ['A', 'B', 'C', 'A'].forEach((name, i) => {
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
