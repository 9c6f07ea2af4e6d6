import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAULTY_ALLOC, FAULTY_LEAK } from '../../firmware/devices/faulty';
import { faultScenario } from './fault-harness';

test('a device model that allocates without bound is stopped by the memory limit; the others keep serving', async () => {
  const { stats } = await faultScenario(FAULTY_ALLOC);
  assert.ok(stats.counters['violation.DEVICE_MODEL_THREW'] || stats.counters['violation.fault.memory'], `out-of-memory stop not counted: ${JSON.stringify(stats.counters)}`);
  assert.ok(stats.counters['allocatedCells']! > 1000, 'the model did not actually allocate');
});

test('a device model that keeps what it allocated is stopped and its memory released, so the partition keeps serving', async () => {
  const { stats } = await faultScenario(FAULTY_LEAK);
  assert.ok(stats.counters['violation.DEVICE_MODEL_THREW'] || stats.counters['violation.fault.memory'], `out-of-memory stop not counted: ${JSON.stringify(stats.counters)}`);
  assert.is(stats.counters['leakedCells'], 0, 'the stopped model still holds its leaked memory');
});

test.run();
