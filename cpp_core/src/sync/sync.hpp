// All sim-backend synchronisation primitives (DESIGN §3), in namespace mmrace::sync.
#pragma once

#include "sync/domain.hpp"
#include "sync/irq.hpp"
#include "sync/lockdep.hpp"
#include "sync/rcu.hpp"
#include "sync/refcount.hpp"
#include "sync/rwsem.hpp"
#include "sync/seqcount.hpp"
#include "sync/spinlock.hpp"
