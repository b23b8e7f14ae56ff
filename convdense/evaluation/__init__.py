"""Metrics in the ``convdense`` scope (imported lazily by the registry)."""
from .upsampling_metrics import DepthRMSE, FlowEPE, depth_rmse, flow_epe_sum  # noqa: F401
