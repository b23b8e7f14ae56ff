"""Pure-torch operators (no OpenMMLab imports): one paper per file, a functional
form plus a thin ``nn.Module``. ``convdense.models`` registers the modules."""
