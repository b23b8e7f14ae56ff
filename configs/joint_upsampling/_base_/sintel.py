# MPI-Sintel training set, clean pass, first frame as guide; EPE in pixels.
# The paper's split (908 train / 133 val) is a split file of '1'/'2' lines.
_base_ = ['./joint_upsampling_data.py']
data_root = 'data/sintel'
split_file = 'data/sintel/sintel_train_val.txt'
train_dataloader = dict(dataset=dict(type='SintelFlowDataset', data_root=data_root, split='train',
                                     split_file=split_file))
val_dataloader = dict(dataset=dict(type='SintelFlowDataset', data_root=data_root, split='val',
                                   split_file=split_file))
test_dataloader = val_dataloader
val_evaluator = dict(type='FlowEPE')
test_evaluator = val_evaluator
