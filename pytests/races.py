"""Programs that several test files share."""

# spf faults racing an mprotect of their VMA.  Format it with mutants="" (the correct
# model: every schedule ends ok) or mutants=" mutants=spf_no_seqcount_check" (some
# schedules fail a check).
SPF_MPROTECT_RACE = """mmrace 1
config strategy=spf{mutants}
process P0
thread P0.T0
  mmap 0x100000 pages=8 prot=rw flags=private,anon,fixed
  write 0x100000 1
  write 0x101000 2
  write 0x102000 3
  read 0x101000
thread P0.T1
  read 0x100000
  mprotect 0x100000 pages=8 prot=r
  read 0x102000
"""
