"""Datasets and transforms in the ``convdense`` scope (imported lazily by the registry)."""
from . import readers, sensor_holes, transforms, upstream_checks  # noqa: F401
from .joint_upsampling import (JointUpsamplingDataset, MiddleburyDataset,  # noqa: F401
                               MiddleburyStereoFlowDataset, NYUDepthV2Dataset, SintelFlowDataset)
from .procedural_flow import ProceduralFlowDataset, generate_flow  # noqa: F401
from .procedural_rgbd import ProceduralRGBDDataset, generate_rgbd  # noqa: F401
