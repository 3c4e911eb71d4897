import torch, math
torch.set_default_dtype(torch.float32)
x = (torch.arange(24, dtype=torch.float32).reshape(1, 2, 3, 4) - 11.5) / 7.0
cases = [
 # name, code body (x is input rank 4 [1,2,3,4]), torch expression
 ("gelu", "torch.gelu(x)", lambda x: torch.nn.functional.gelu(x)),
 ("gelu_tanh", "torch.gelu(x, approximate=\"tanh\")", lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
 ("silu", "torch.silu(x)", lambda x: torch.nn.functional.silu(x)),
 ("sigmoid", "torch.sigmoid(x)", torch.sigmoid),
 ("softmax", "torch.softmax(x, -1)", lambda x: torch.softmax(x, -1)),
 ("group_norm", "torch.group_norm(x, 2, None, None, 1.0000000000000001e-05, True)", lambda x: torch.nn.functional.group_norm(x, 2)),
 ("layer_norm", "torch.layer_norm(x, [4], None, None, 1.0000000000000001e-05, True)", lambda x: torch.nn.functional.layer_norm(x, [4])),
 ("upsample_nearest2d", "torch.upsample_nearest2d(x, None, [2., 2.])", lambda x: torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")),
 ("permute", "torch.permute(x, [0, 3, 1, 2])", lambda x: x.permute(0, 3, 1, 2)),
 ("transpose", "torch.transpose(x, -1, -2)", lambda x: x.transpose(-1, -2)),
 ("slice", "torch.slice(x, 3, 1, 3, 1)", lambda x: x[:, :, :, 1:3]),
 ("cat", "torch.cat([x, torch.mul(x, 2)], 1)", lambda x: torch.cat([x, x * 2], 1)),
 ("flatten", "torch.flatten(x, 2, -1)", lambda x: x.flatten(2)),
 ("pow", "torch.pow(x, 2)", lambda x: x.pow(2)),
 ("div", "torch.div(x, 3)", lambda x: x / 3),
 ("sub_alpha", "torch.sub(x, torch.exp(x), alpha=2)", lambda x: torch.sub(x, x.exp(), alpha=2)),
 ("pad", "torch.pad(x, [1, 2, 0, 1], \"constant\", 0.5)", lambda x: torch.nn.functional.pad(x, [1, 2, 0, 1], value=0.5)),
 ("triu", "torch.triu(x, 1)", lambda x: torch.triu(x, 1)),
 ("masked_fill", "torch.masked_fill(x, torch.lt(x, 0), -1.)", lambda x: x.masked_fill(x < 0, -1.0)),
 ("expand", "torch.expand(torch.slice(x, 0, 0, 1, 1), [3, -1, -1, -1])", lambda x: x[0:1].expand(3, -1, -1, -1)),
 ("matmul", "torch.matmul(x, torch.transpose(x, 2, 3))", lambda x: x @ x.transpose(2, 3)),
 ("baddbmm", "torch.baddbmm(torch.slice(torch.reshape(x, [2, 3, 4]), 2, 0, 3, 1), torch.reshape(x, [2, 3, 4]), torch.transpose(torch.reshape(x, [2, 3, 4]), 1, 2), beta=0.5, alpha=0.25)",
   None),
 ("einsum", "torch.einsum(\"bij,bkj->bik\", [torch.reshape(x, [2, 3, 4]), torch.reshape(x, [2, 3, 4])])", lambda x: torch.einsum("bij,bkj->bik", x.reshape(2, 3, 4), x.reshape(2, 3, 4))),
 ("sdpa", "torch.scaled_dot_product_attention(x, x, x)", None),
 ("sdpa_causal", "torch.scaled_dot_product_attention(x, torch.mul(x, 0.5), x, None, 0., True)", None),
 ("arange_full", "torch.add(x, torch.mul(torch.arange(4, dtype=6), torch.full([1], 0.5, dtype=6)))", lambda x: x + torch.arange(4, dtype=torch.float32) * torch.full([1], 0.5)),
 ("size_view", "torch.view(x, [int(torch.mul(ops.prim.NumToTensor(torch.size(x, 1)), 3)), -1])", lambda x: x.view(x.size(1) * 3, -1)),
 ("index", "torch.index(torch.reshape(x, [6, 4]), [torch.arange(0, 3, dtype=4), torch.argmax(torch.slice(torch.reshape(x, [6, 4]), 0, 0, 3, 1), -1)])", lambda x: x.reshape(6, 4)[torch.arange(3), x.reshape(6, 4)[0:3].argmax(-1)]),
]
def sdpa(q, k, v, causal=False):
    s = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))
    if causal:
        L, S = q.size(-2), k.size(-2)
        s = s.masked_fill(torch.ones(L, S).tril() == 0, float("-inf"))
    return s.softmax(-1) @ v
for name, code, fn in cases:
    if name == "baddbmm":
        b = x.reshape(2, 3, 4); y = torch.baddbmm(b[:, :, 0:3], b, b.transpose(1, 2), beta=0.5, alpha=0.25)
    elif name == "sdpa":
        y = sdpa(x, x, x)
    elif name == "sdpa_causal":
        y = sdpa(x, x * 0.5, x, True)
    else:
        y = fn(x)
    values = ", ".join("%.9gf" % v for v in y.flatten().tolist())
    print('      new Case("%s", "%s", new float[] {%s}),' % (name, code.replace('"', '\\"'), values))
