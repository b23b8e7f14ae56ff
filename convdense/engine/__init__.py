"""Runner hooks and the CPU mixed-precision optim wrapper in the ``convdense``
scope (imported lazily by the registry)."""
from .amp import CpuAmpOptimWrapper  # noqa: F401
from .deploy_hook import DeployHook  # noqa: F401
from .finite_loss_hook import StopOnNonFiniteLoss  # noqa: F401
from .hooks import JointUpsamplingPanelHook  # noqa: F401
