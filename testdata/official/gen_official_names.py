# Writes the authors' state_dict names and shapes of small models (fixture for lib/official/names_test.ts).
import sys, json
sys.path.insert(0, '/work/shared/peers/residual-flows')
import torch
from resflows.resflow import ResidualFlow
import resflows.layers as layers

def build(args):
    im_dim = 3
    side = args['imagesize']
    size = (2, im_dim, side, side)
    if args['squeeze_first']:
        size = (2, im_dim * 4, side // 2, side // 2)
    init_layer = layers.LogitTransform(0.05) if args['logit_transform'] else None
    m = ResidualFlow(size, n_blocks=list(map(int, args['nblocks'].split('-'))), intermediate_dim=args['idim'],
        factor_out=args['factor_out'], quadratic=False, init_layer=init_layer, actnorm=args['actnorm'],
        fc_actnorm=False, batchnorm=False, dropout=0., fc=False, coeff=0.98, vnorms='2222',
        n_lipschitz_iters=None, sn_atol=1e-3, sn_rtol=1e-3, n_power_series=None, n_dist='poisson',
        n_samples=1, kernels='3-1-3', activation_fn='swish', fc_end=args['fc_end'], fc_idim=args['fc_idim'],
        n_exact_terms=2, preact=True, neumann_grad=True, grad_in_forward=True, first_resblock=True,
        learn_p=False, classification=False, classification_hdim=256, n_classes=1, block_type='resblock')
    with torch.no_grad():
        m(torch.rand(*size))
    return m

out = {}
for name, args in {
    'squeeze_first_factor_out_fc_end': dict(data='cifar10', imagesize=16, squeeze_first=True, factor_out=True,
        nblocks='1-1-1', idim=8, fc_end=True, fc_idim=16, actnorm=True, logit_transform=True),
    'no_logit_no_actnorm': dict(data='cifar10', imagesize=16, squeeze_first=False, factor_out=False,
        nblocks='1-2', idim=8, fc_end=False, fc_idim=16, actnorm=False, logit_transform=False),
}.items():
    torch.manual_seed(0)
    m = build(args)
    out[name] = {'args': args, 'state_dict': [[k, list(v.shape)] for k, v in m.state_dict().items()]}
json.dump(out, open(sys.argv[1], 'w'), indent=1)
