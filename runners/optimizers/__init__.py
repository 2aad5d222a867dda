"""One module per optimizer family; importing a module registers its optimizers. Shared math
(momentum, LMO table, variance reduction, weight decay) lives in :mod:`.base`; schedules in
:mod:`runners.schedules`."""

from . import adam, dion, gd, gluon, muon, mvr, orth_moment, preconditioned, signsgd  # noqa: F401
