"""Test-only instrumentation of a ``tools/train.py`` child process.

Imported through the config's ``custom_imports`` by the resume and
distributed tests; it acts only on these environment variables:

``CONVDENSE_TEST_KILL_AT``
    ``iter:N``: after training iteration N (and its hooks), announce
    ``KILL POINT`` on stderr and wait to be killed.
    ``write:NAME``: when the checkpoint ``NAME`` (e.g. ``iter_4.pth``) is being
    written, i.e. its temporary file holds data but has not been renamed yet,
    cut that file to half its size (what a kill mid-write leaves), announce
    ``KILL POINT`` and wait.
``CONVDENSE_TEST_RECORD``
    a path: one JSON line per training iteration with the iteration, the rank,
    the loss and a digest of the batch's inputs (what was sampled, cropped and
    flipped), appended as it happens.
"""
import hashlib
import json
import os
import sys
import time

import torch
from mmengine.runner import IterBasedTrainLoop

KILL_AT = os.environ.get('CONVDENSE_TEST_KILL_AT', '')
RECORD = os.environ.get('CONVDENSE_TEST_RECORD')


def wait_to_be_killed(where):
    print(f'KILL POINT {where}', file=sys.stderr, flush=True)
    time.sleep(600)
    sys.exit('kill_points: nobody killed this process')


def digest(data):
    """A short hash of every tensor in a (nested) batch, in order."""
    sha = hashlib.sha1()

    def visit(node):
        if isinstance(node, torch.Tensor):
            sha.update(node.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(node, dict):
            for key in sorted(node):
                visit(node[key])
        elif isinstance(node, (list, tuple)):
            for item in node:
                visit(item)
        elif hasattr(node, 'metainfo'):  # mmdet/mmseg data samples: image id, flip
            sha.update(repr(sorted((k, repr(v)) for k, v in node.metainfo.items()
                                   if k in ('img_id', 'img_path', 'flip', 'flip_direction',
                                            'scale_factor'))).encode())
    visit(data)
    return sha.hexdigest()[:16]


_run_iter = IterBasedTrainLoop.run_iter


def run_iter(loop, data_batch):
    batch_digest = digest(data_batch) if RECORD else None
    _run_iter(loop, data_batch)
    if RECORD:
        loss = loop.runner.message_hub.get_scalar('train/loss').current()
        with open(RECORD, 'a') as f:
            f.write(json.dumps(dict(iter=loop.iter, rank=int(os.environ.get('RANK', 0)),
                                    loss=float(loss), batch=batch_digest)) + '\n')
    if KILL_AT == f'iter:{loop.iter}':
        wait_to_be_killed(f'after iteration {loop.iter}')


IterBasedTrainLoop.run_iter = run_iter

if KILL_AT.startswith('write:'):
    _fsync = os.fsync
    _target = '.' + KILL_AT.split(':', 1)[1] + '.'

    def fsync(fd):
        if os.path.basename(os.readlink(f'/proc/self/fd/{fd}')).startswith(_target):
            os.ftruncate(fd, os.fstat(fd).st_size // 2)
            wait_to_be_killed(f'writing {KILL_AT[6:]}')
        _fsync(fd)

    os.fsync = fsync
