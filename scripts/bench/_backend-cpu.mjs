// Shared by the node-runtime scenarios (files starting with `_` are helpers, not scenarios).
/**
 * Counts the CPU time (user + system, µs) spent inside calls into the firmware of `sim` — the
 * backend's share, including the host calls it makes (storage syscalls, the switch). Returns a
 * function reading the running total.
 */
export function backendCpu(sim) {
  const rt = sim.runtime;
  const call = rt.call.bind(rt);
  let us = 0;
  rt.call = (...a) => {
    const c0 = process.cpuUsage();
    const r = call(...a);
    const c = process.cpuUsage(c0);
    us += c.user + c.system;
    return r;
  };
  return () => us;
}
