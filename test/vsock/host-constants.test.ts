// The node runtime's host side keeps its own copy of the HAL's vsock numbers (it sees the bundle only
// through firmware/hal.ts): readiness flags, shutdown bits and the limits must be the firmware's, or a
// HUP would read as "writable" and a full host buffer would go unnoticed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fw from '../../firmware/services';
import * as host from '../../runtime/node/vsock';

for (const k of ['VSOCK_EV_READABLE', 'VSOCK_EV_WRITABLE', 'VSOCK_EV_HUP', 'VSOCK_EV_ACCEPT', 'VSOCK_SHUT_RD', 'VSOCK_SHUT_WR', 'VSOCK_HOST_CONNECTIONS', 'VSOCK_HOST_BUFFER'] as const) {
  test(`runtime/node/vsock.ts ${k} is firmware/services.ts's`, () => {
    assert.is(host[k], fw[k], `${k}: node runtime ${host[k]}, firmware ${fw[k]}`);
  });
}

test.run();
