"""Quiet training for the demos: a progress bar on the terminal, the Runner's output in a file.

A user running ``make demo`` wants one bar per model and the result tables; the
config dumps, hook tables and loss lines mmengine prints stay in the work dir.
"""
import contextlib
import statistics
import time

from mmengine.hooks import Hook


class ProgressAndTimingHook(Hook):
    """A tqdm bar over the training iterations (on ``stream``, the real terminal while
    the Runner's own output goes to a file), and the wall time of every iteration."""

    priority = 'VERY_LOW'

    def __init__(self, description, stream):
        self.description = description
        self.stream = stream
        self.iteration_seconds = []
        self._bar = None
        self._start = None

    def before_train(self, runner):
        from tqdm import tqdm
        self._bar = tqdm(total=runner.max_iters, initial=runner.iter, desc=self.description,
                         file=self.stream, dynamic_ncols=True, leave=True)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.iteration_seconds.append(time.perf_counter() - self._start)
        loss = (outputs or {}).get('loss')
        if loss is not None:
            self._bar.set_postfix(loss=f'{float(loss):.3f}', refresh=False)
        self._bar.update(1)

    def after_train(self, runner):
        self._bar.close()

    def seconds_per_iter(self, skip=5):
        """Median iteration time, the first ``skip`` (warm-up) iterations left out."""
        times = self.iteration_seconds[skip:] or self.iteration_seconds
        return statistics.median(times) if times else float('nan')


@contextlib.contextmanager
def console_to(path):
    """Send everything printed (mmengine's console logger included) to ``path``;
    ``None`` leaves the terminal alone."""
    if path is None:
        yield
        return
    with open(path, 'a') as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield
