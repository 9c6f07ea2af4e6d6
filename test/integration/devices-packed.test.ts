// The driver-model suite (test/shared/devices.suite.ts) with packed rings negotiated (VIRTIO_F_RING_PACKED)
// on the simulator, once per transport (a register transport finds a packed queue's news by the queue's
// own check, not by an available index); test/native/shared-devices-packed.test.ts runs it on the native runtime.
import { simPacked } from '../shared/backends';
import { register } from '../shared/devices.suite';
import { everyTransport } from '../shared/suite';

everyTransport(register, simPacked);
