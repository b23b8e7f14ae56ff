"""What the benchmarks record about the machine they ran on (shared by the scripts
in ``benchmarks/``): CPU model, cores, torch threads and the load averages, so a
reader can tell an idle machine's figures from a shared one's."""
import os
import platform


def cpu_model():
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def vector_isa():
    """The widest x86 vector extension the CPU reports (``avx512f``, ``avx2``, ``avx``),
    else ``None``: the same CPU model name can come with or without AVX-512, which moves
    MKL's and oneDNN's speed, and so the ratios, by several times."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    flags = set(line.split(':', 1)[1].split())
                    return next((isa for isa in ('avx512f', 'avx2', 'avx') if isa in flags), None)
    except OSError:
        pass
    return None


def load_average():
    """The 1/5/15-minute load averages, or ``None`` where the OS has none."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine():
    """CPU model, vector ISA, cores, torch threads and the load averages now."""
    import torch
    return dict(cpu=cpu_model(), vector_isa=vector_isa(), cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                load_average=load_average(), python=platform.python_version(),
                torch=torch.__version__)
