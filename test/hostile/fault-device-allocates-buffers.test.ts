import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAULTY_BUFFERS } from '../../firmware/devices/faulty';
import { faultScenario } from './fault-harness';

test('a device model that hoards typed arrays (storage QuickJS does not count) is stopped as a memory fault', async () => {
  const { stats, faults } = await faultScenario(FAULTY_BUFFERS);
  assert.ok(stats.counters['violation.fault.memory'], `memory stop not counted: ${JSON.stringify(stats.counters)}`);
  assert.ok(faults.some((f) => f.kind === 'memory'), `runtime did not report a memory fault: ${JSON.stringify(faults)}`);
  assert.is(stats.counters['buffers'], 0, 'the quarantined model still holds its buffers');
});

test.run();
