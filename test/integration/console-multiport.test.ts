// The console driver model brings up every port of a MULTIPORT console the way Linux does, and each
// port carries its own stream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConsoleDriver } from '../../frontend/drivers/console';
import { createSim } from '../../frontend/sim';

/** rng (0) and a console (1) whose port 1 `name` is backed by the memory stream serial1. */
const twoPorts = (name: string) =>
  createSim({
    services: { serial1: { kind: 'stream', backing: 'memory' } },
    devices: [
      { type: 'rng', service: 'entropy0' },
      { type: 'console', service: 'console0', ports: [{ service: 'serial1', name }] },
    ],
  });

test('a two-port console: port 0 is the console, port 1 is named and carries its own stream', async () => {
  const s = await twoPorts('org.bulkhead.log');
  const con = await ConsoleDriver.open((await s.frontend()).devices[1]!, { multiport: true });
  assert.equal(con.ports.map((p) => [p.id, p.name, p.hostOpen]), [
    [0, 'console', true],
    [1, 'org.bulkhead.log', true],
  ]);
  await con.write('to the console');
  await con.port('org.bulkhead.log')!.write('to the log');
  assert.is(s.console('console0').output(), 'to the console');
  assert.is(s.console('serial1').output(), 'to the log');
  s.console('serial1').input('from the host log side');
  assert.is(new TextDecoder().decode(await con.port('org.bulkhead.log')!.read()), 'from the host log side');
  assert.is(new TextDecoder().decode(await con.read()), '', 'nothing on the console port');
  assert.is(s.stats().devices[1]!.counters['portsOpen'], 2, 'the device saw the guest open both ports');
  s.dispose();
});

test('without the multiport option the driver uses port 0 only, even if the device offers more', async () => {
  const s = await twoPorts('x');
  const con = await ConsoleDriver.open((await s.frontend()).devices[1]!);
  assert.is(con.ports.length, 1);
  await con.write('plain');
  assert.is(s.console('console0').output(), 'plain');
  s.dispose();
});

test.run();
