"""Joint-upsampling networks, non-learned baselines and their mmengine wrapper."""
from .base import JointUpsampler  # noqa: F401
from .classic import JBU, Bicubic  # noqa: F401
from .djf import DJF  # noqa: F401
from .pac_joint_upsample import PacJointUpsample, PacJointUpsampleLite  # noqa: F401
from .cascade import JointUpsampleCascade  # noqa: F401
