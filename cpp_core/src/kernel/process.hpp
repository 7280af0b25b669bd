// A process of the program: a thread group (the task_structs of one tgid) and what its
// tasks share, the mm and the signal_struct's thread counts (kernel/fork.c, exit.c).
#pragma once

namespace mmrace::mm {

struct mm_struct;

struct process {
    // task->mm of every thread of the group; a forked process gets its mm at fork.
    mm_struct* mm = nullptr;
    // signal->nr_threads: its threads, which are its mm's mm_users at start or fork.
    int nr_threads = 0;
    // How many of them have exited (do_exit ran): the process's files close with the
    // last (signal->live reaching 0), whoever still holds its mm (smaps' mmget).
    int nr_exited = 0;
};

}  // namespace mmrace::mm
