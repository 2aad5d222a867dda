"""One module per optimizer family; importing a module registers its optimizers."""
from . import gd, muon, signsgd  # noqa: F401
