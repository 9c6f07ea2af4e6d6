import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAULTY_THROW } from '../../firmware/devices/faulty';
import { faultScenario } from './fault-harness';

test('a device model that throws is stopped, NEEDS_RESET, reported, resettable; the others keep serving', async () => {
  const { stats, faults } = await faultScenario(FAULTY_THROW);
  assert.is(stats.counters['violation.DEVICE_MODEL_THREW'], 1, 'throw not counted as DEVICE_MODEL_THREW');
  assert.match(stats.lastViolation, /device model bug/, 'lastViolation does not report the exception');
  assert.equal(faults, [], 'the exception escaped the dispatcher into the runtime');
});

test.run();
