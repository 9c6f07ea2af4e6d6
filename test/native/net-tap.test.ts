/**
 * A real kernel network behind the native backend: the firmware's net0 service is a TAP
 * (`--service net0=tap:NAME`), moved into a network namespace this test creates and addressed
 * there as 10.199.0.1/24. A UDP client in the namespace (node's dgram, the kernel's own ARP and UDP)
 * talks to 10.199.0.2:7777, which is this test answering through the frontend driver model on net0:
 * ARP request → ARP reply, UDP datagram (checksum completed by the switch, since the driver did not
 * negotiate GUEST_CSUM) → UDP reply sent with NEEDS_CSUM, which the kernel takes through the TAP's
 * virtio_net_hdr. Deleting the TAP then takes net0's link down. The namespace and the TAP are removed
 * even when the test fails; without `ip` or
 * /dev/net/tun the test fails and says so.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VIRTIO_NET_F_CSUM, VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS } from '../../firmware/devices/net';
import { Frontend } from '../../frontend/device';
import { NetDriver } from '../../frontend/drivers/net';
import { run } from '../../runtime/native/harness.mjs';
import { ether, internetChecksum, MAC0, udpFrame } from '../net/_net';
import { board, withNative } from './_native';

const NS = `bh-t-${process.pid}`;
const TAP = `bht${process.pid % 100000}`;
const NS_IP = [10, 199, 0, 1];
const OUR_IP = [10, 199, 0, 2];
const hex = (m: Uint8Array) => Array.from(m, (x) => x.toString(16).padStart(2, '0')).join(':');

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 });
}

function requireNetTools(): void {
  if (!existsSync('/dev/net/tun')) throw new Error('/dev/net/tun is missing: the TAP test needs the TUN driver (modprobe tun, or run the container with the device)');
  try {
    ip('-V');
  } catch {
    throw new Error('`ip` (iproute2) is missing: run npm run setup:native');
  }
}

const same = (a: Uint8Array, b: number[]) => b.every((x, i) => a[i] === x);

function arpReply(req: Uint8Array): Uint8Array {
  const p = new Uint8Array(28);
  p.set([0, 1, 8, 0, 6, 4, 0, 2], 0); // Ethernet/IPv4, reply
  p.set(MAC0, 8);
  p.set(OUR_IP, 14);
  p.set(req.subarray(22, 28), 18); // target = the requester
  p.set(req.subarray(28, 32), 24);
  return ether(req.subarray(6, 12), MAC0, 0x0806, p);
}

/** IPv4/UDP from us to the namespace, the UDP checksum field holding the pseudo-header seed (NEEDS_CSUM). */
function udpReply(dstMac: Uint8Array, dstPort: number, srcPort: number, payload: Uint8Array) {
  const u = udpFrame(dstMac, MAC0, payload, { srcIp: OUR_IP, dstIp: NS_IP, srcPort, dstPort });
  return { frame: u.frame, csum: { start: u.csumStart, offset: u.csumOffset } };
}

const CLIENT = `
const d = require('dgram').createSocket('udp4');
d.on('message', (m, r) => { console.log(JSON.stringify({ msg: m.toString(), from: r.address, port: r.port })); process.exit(0); });
d.bind(4321, '${NS_IP.join('.')}', () => d.send('ping from the namespace', 7777, '${OUR_IP.join('.')}'));
setTimeout(() => { console.error('no UDP reply within 8 s'); process.exit(3); }, 8000);
`;

test('a kernel in a network namespace reaches the frontend through the TAP: ARP, UDP both ways, checksums', async () => {
  requireNetTools();
  const nb = board({ devices: [{ type: 'net', service: 'net0', mac: hex(MAC0) }], services: { net0: { kind: 'packet', switch: 'sw0' } } });
  try {
    ip('netns', 'add', NS);
    await withNative({ board: nb, services: { net0: `tap:${TAP}` } }, async (n) => {
      ip('link', 'set', TAP, 'netns', NS);
      ip('-n', NS, 'addr', 'add', `${NS_IP.join('.')}/24`, 'dev', TAP);
      ip('-n', NS, 'link', 'set', TAP, 'up');
      const fe = await Frontend.attach(n.port!);
      const nic = await NetDriver.open(fe.devices[2]!, { queueSize: 64, features: VIRTIO_NET_F_CSUM | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS });
      const client = run('ip', ['netns', 'exec', NS, process.execPath, '-e', CLIENT]);
      let arp = 0;
      let datagram: Uint8Array | null = null;
      const end = Date.now() + 10000;
      while (client.child.exitCode === null && Date.now() < end) {
        const frames = await nic.receive();
        if (frames.length === 0) await n.port!.wait(20);
        for (const { data: f } of frames) {
          const type = (f[12]! << 8) | f[13]!;
          if (type === 0x0806 && f.length >= 42 && f[21] === 1 && same(f.subarray(38, 42), OUR_IP)) {
            arp++;
            await nic.send([arpReply(f)]);
          } else if (type === 0x0800 && f[23] === 17 && same(f.subarray(30, 34), OUR_IP) && ((f[36]! << 8) | f[37]!) === 7777) {
            datagram = f;
            const payload = new TextEncoder().encode(`pong: ${new TextDecoder().decode(f.subarray(42))}`);
            const r = udpReply(f.subarray(6, 12), (f[34]! << 8) | f[35]!, 7777, payload);
            await nic.send([r.frame], r.csum);
          }
        }
      }
      const res = await client.exited;
      assert.ok(arp >= 1, 'the namespace kernel ARPed for 10.199.0.2 through the TAP and the switch');
      assert.ok(datagram, `the UDP datagram reached the frontend (client: ${res.stderr.trim()})`);
      const d = datagram!;
      const udpLen = (d[38]! << 8) | d[39]!;
      const pseudo = Uint8Array.of(...d.subarray(26, 34), 0, 17, udpLen >> 8, udpLen & 0xff);
      assert.is(internetChecksum(pseudo, d.subarray(34, 34 + udpLen)), 0, 'the datagram the frontend got verifies with its pseudo-header (complete checksum)');
      assert.is(res.code, 0, `the client in the namespace got our UDP reply (exit ${res.code}: ${res.stderr.trim()})`);
      const got = JSON.parse(res.stdout.trim());
      assert.equal(got, { msg: 'pong: ping from the namespace', from: OUR_IP.join('.'), port: 7777 }, 'the reply the kernel delivered');
      // Deleting the TAP takes net0's link down (STATUS), once; the firmware logs it once.
      assert.ok(await nic.linkUp(), 'link up while the TAP exists');
      ip('-n', NS, 'link', 'del', TAP);
      const end2 = Date.now() + 5000;
      while ((await nic.linkUp()) && Date.now() < end2) await n.port!.wait(20);
      assert.not.ok(await nic.linkUp(), 'net0 reports link down once its TAP is deleted');
      const stderr = (await n.stop()).stderr;
      assert.is(stderr.split('the TAP is gone').length - 1, 1, `one "TAP is gone" warning:\n${stderr}`);
      const line = stderr.split('\n').find((l) => l.includes(`packet tap:${TAP} (switch`)) ?? '';
      assert.match(line, /rxFrames [1-9]/, `the TAP port counted the frames written to the kernel: ${line}`);
      const net0 = stderr.split('\n').find((l) => l.includes('packet net0 (switch')) ?? '';
      assert.match(net0, /csumCompleted [1-9]/, `the kernel's partial-checksum datagram was completed by the switch for net0: ${net0}`);
    });
  } finally {
    try {
      ip('netns', 'del', NS);
    } catch {
      /* not created */
    }
    try {
      ip('link', 'del', TAP);
    } catch {
      /* gone with the firmware (a non-persistent TAP) */
    }
  }
});

test.run();
