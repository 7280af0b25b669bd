"""Seed 002's lockdep scenario, the sides that are not khugepaged: a write(2) to a sysfs
file copies from user memory under kernfs s_active, and CPU hotplug drains s_active under
cpu_hotplug_lock.  On their own they form no lock cycle, under any schedule."""
import pytest

import mmrace

PROGRAM = """mmrace 1
config strategy={strategy}
process P0
thread P0.T0
  sysfs_write 0x300000
  mmap 0x100000 pages=1 prot=r flags=private,anon,fixed
  sysfs_write 0x100000
kthread cpuhp
  cpu_hotplug
"""


@pytest.mark.parametrize("strategy", ["classic", "spf", "pervma"])
def test_sysfs_write_and_cpu_hotplug_never_deadlock(strategy):
    seen = set()
    for seed in range(40):
        res = mmrace.run(PROGRAM.format(strategy=strategy), schedule=mmrace.Random(seed))
        assert res.verdict == "ok", res.message
        got = [o.result for o in res.ops]
        # An unmapped buffer is EFAULT; while the CPU is down its file is gone (ENODEV).
        assert got[0] in ("EFAULT", "ENODEV") and got[1] == "0x100000"
        assert got[2] in ("ok", "ENODEV") and got[3] == "0"
        seen.update(got)
    assert "ENODEV" in seen and "ok" in seen
