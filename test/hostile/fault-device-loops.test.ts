import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FAULTY_LOOP } from '../../firmware/devices/faulty';
import { faultScenario } from './fault-harness';

test('a device model that loops forever is stopped by the watchdog, NEEDS_RESET, resettable; the others keep serving', async () => {
  const { stats, faults } = await faultScenario(FAULTY_LOOP);
  assert.is(faults.length, 1, `expected one runtime fault, got ${JSON.stringify(faults)}`);
  assert.is(faults[0]!.kind, 'watchdog', 'the loop was not stopped by the watchdog');
  assert.is(stats.counters['violation.fault.watchdog'], 1, 'watchdog stop not counted on the device');
  assert.match(stats.lastViolation, /watchdog/, 'lastViolation does not name the watchdog');
});

test.run();
