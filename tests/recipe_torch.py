"""PyTorch side of the recipe check (run by tests/recipe_torch.sh with Debian's /usr/bin/python3,
which sees python3-torch). Recomputes what tests/recipe_torch.c wrote:
  sgd, adam, adamw  the same four steps in float64 with one param_group per tensor (lr and
                    weight_decay from the options, requires_grad=False for a frozen one, so
                    its grad is None and the optimiser skips it, as nn.h), LambdaLR-style
                    rates and CrossEntropyLoss(label_smoothing=0.2): the losses and every
                    parameter and running statistic after the steps within 1e-5 relative
  smooth            F.cross_entropy(label_smoothing=eps) and its autograd gradient in float64
  augment           numpy's np.pad (constant / reflect), the window and the mirror: bit-exact
  tta               airbench94's infer_mirror_translate (its three levels) in float32, 1e-5
  ema               torch.lerp_ in float32 with weight 1 - decay: bit-exact; apply = copy
  schedule          airbench94's get_lr(step) for 476 steps, within 2 float32 ulps
Prints a FAIL line per difference and "recipe_torch: N passed, N failed"."""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_torch import build, read_safetensors  # noqa: E402

RTOL = 1e-5
passed = failed = 0


def verdict(case, problems):
    global passed, failed
    if problems:
        failed += 1
        for p in problems:
            print(f"FAIL {case}: {p}")
    else:
        passed += 1
        print(f"ok {case}")


def close(what, ours, theirs, rtol=RTOL):
    ours = np.asarray(ours, dtype=np.float64).ravel()
    theirs = np.asarray(theirs, dtype=np.float64).ravel()
    if ours.shape != theirs.shape:
        return [f"{what}: {ours.size} values, PyTorch {theirs.size}"]
    if not np.array_equal(np.isfinite(ours), np.isfinite(theirs)) or \
            not np.array_equal(ours[~np.isfinite(ours)], theirs[~np.isfinite(theirs)]):
        return [f"{what}: the non-finite values differ"]
    fin = np.isfinite(theirs)
    if not fin.any():
        return []
    scale = max(np.abs(theirs[fin]).max(), 1e-30)
    err = np.abs(ours[fin] - theirs[fin]).max()
    if err > rtol * scale:
        return [f"{what}: max difference {err:.3g}, {err / scale:.3g} of max |PyTorch| {scale:.3g}"]
    return []


def load(folder, name, dtype=np.float32):
    return np.fromfile(f"{folder}/{name}", dtype=dtype)


def train(folder, case):
    spec = json.load(open(f"{folder}/{case}.json"))
    meta, state = read_safetensors(f"{folder}/{case}.init.safetensors")
    _, final = read_safetensors(f"{folder}/{case}.final.safetensors")
    model = build(meta)
    model.load_state_dict(state, strict=True)
    model.double().train()
    n, steps = spec["n"], spec["steps"]
    shape = [int(v) for v in meta["input"].split(",")]
    x = torch.from_numpy(load(folder, f"{case}.x.f32").astype(np.float64)).reshape(len(steps), n, *shape)
    y = torch.from_numpy(load(folder, f"{case}.y.i32", np.int32).astype(np.int64)).reshape(len(steps), n)
    params = dict(model.named_parameters())
    groups = [{"params": [p], "name": k} for k, p in params.items()]
    wd = spec["weight_decay"]
    if spec["optimizer"] == "sgd":
        opt = torch.optim.SGD(groups, lr=1.0, momentum=spec["momentum"], nesterov=True, weight_decay=wd)
    elif spec["optimizer"] == "adam":
        opt = torch.optim.Adam(groups, lr=1.0, weight_decay=wd)
    else:
        opt = torch.optim.AdamW(groups, lr=1.0, weight_decay=wd)
    problems = []
    for k, s in enumerate(steps):
        for g in opt.param_groups:
            lr_scale, wd_scale, no_decay, frozen = s["options"][g["name"]]
            g["lr"] = s["lr"] * (lr_scale or 1.0)
            g["weight_decay"] = 0.0 if no_decay else wd * (wd_scale or 1.0)
            params[g["name"]].requires_grad_(not frozen)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[k]), y[k], label_smoothing=spec["smoothing"])
        loss.backward()
        opt.step()
        problems += close(f"step {k} loss", s["loss"], loss.item())
    ours = {k: v for k, v in final.items() if not k.endswith("num_batches_tracked")}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            if int(final[k]) != int(v):
                problems.append(f"{k}: {int(final[k])}, PyTorch {int(v)}")
            continue
        problems += close(k, ours[k].numpy(), v.detach().numpy())
    if not np.array_equal(state["2.weight"].numpy(), ours["2.weight"].numpy()):
        problems.append("2.weight (frozen throughout) moved")
    return problems


def smooth(folder):
    k = 5
    z = torch.from_numpy(load(folder, "smooth.z.f32").astype(np.float64)).reshape(-1, k)
    y = torch.from_numpy(load(folder, "smooth.y.i32", np.int32).astype(np.int64))
    out = load(folder, "smooth.out.f32").reshape(3, -1)
    problems = []
    for e, eps in enumerate([0.2, 0.0, 1.0]):
        zz = z.clone().requires_grad_(True)
        loss = F.cross_entropy(zz, y, label_smoothing=float(np.float32(eps)))
        loss.backward()
        problems += close(f"eps {eps} loss", out[e][0], loss.item(), 1e-6)
        problems += close(f"eps {eps} gradient", out[e][1:], zz.grad.numpy(), 1e-6)
    return problems


def augment(folder):
    c, h, w = 2, 5, 6
    src = load(folder, "augment.src.f32").reshape(c, h, w)
    out = load(folder, "augment.out.f32").reshape(-1, c, h, w)
    at, problems = 0, []
    for pad in (1, 2):
        for reflect in (0, 1):
            padded = np.pad(src, ((0, 0), (pad, pad), (pad, pad)), mode="reflect" if reflect else "constant")
            tpad = F.pad(torch.from_numpy(src)[None], (pad,) * 4, mode="reflect" if reflect else "constant")[0]
            if not np.array_equal(padded, tpad.numpy()):
                problems.append("numpy's and PyTorch's padding differ")
            for flip in (0, 1):
                for oy in range(2 * pad + 1):
                    for ox in range(2 * pad + 1):
                        want = padded[:, oy:oy + h, ox:ox + w]
                        if flip:
                            want = want[:, :, ::-1]
                        if not np.array_equal(out[at], want):
                            problems.append(f"pad {pad} reflect {reflect} flip {flip} offset ({oy}, {ox}) differs")
                        at += 1
    return problems


def tta(folder):
    meta, state = read_safetensors(f"{folder}/tta.safetensors")
    model = build(meta)
    model.load_state_dict(state, strict=True)
    model.float().eval()
    x = torch.from_numpy(load(folder, "tta.x.f32")).reshape(-1, 3, 8, 8)
    out = load(folder, "tta.out.f32").reshape(3, -1)

    # airbench94's infer functions
    def infer_basic(inputs, net):
        return net(inputs).clone()

    def infer_mirror(inputs, net):
        return 0.5 * net(inputs) + 0.5 * net(inputs.flip(-1))

    def infer_mirror_translate(inputs, net):
        logits = infer_mirror(inputs, net)
        padded = F.pad(inputs, (1,) * 4, "reflect")
        translated = [padded[:, :, 0:8, 0:8], padded[:, :, 2:10, 2:10]]
        logits_translate = torch.stack([infer_mirror(t, net) for t in translated]).mean(0)
        return 0.5 * logits + 0.5 * logits_translate

    problems = []
    with torch.no_grad():
        for lv, fn in enumerate([infer_basic, infer_mirror, infer_mirror_translate]):
            problems += close(f"level {lv}", out[lv], fn(x, model).numpy())
    return problems


def ema(folder):
    decay = load(folder, "ema.decay.f32")
    rec = load(folder, "ema.values.f32").reshape(8, -1)
    avg = torch.from_numpy(rec[0].copy())
    problems = []
    for k in range(3):
        avg.lerp_(torch.from_numpy(rec[1 + 2 * k].copy()), 1 - decay[k].item())
        if not np.array_equal(avg.numpy(), rec[2 + 2 * k]):
            bad = np.nonzero(avg.numpy() != rec[2 + 2 * k])[0]
            problems.append(f"update {k} (decay {decay[k]:.6g}): {bad.size} values differ from lerp_, "
                            f"first at {bad[0]}")
    if not np.array_equal(rec[7], rec[6]):
        problems.append("nn_ema_apply did not copy the average into the net")
    return problems


def schedule(folder):
    ours = load(folder, "schedule.f32")
    total = 476

    def get_lr(step):   # airbench94's
        warmup_steps = int(total * 0.23)
        warmdown_steps = total - warmup_steps
        if step < warmup_steps:
            frac = step / warmup_steps
            return 0.2 * (1 - frac) + 1.0 * frac
        frac = (step - warmup_steps) / warmdown_steps
        return 1.0 * (1 - frac) + 0.07 * frac

    want = np.array([get_lr(min(s, total)) for s in range(len(ours))], dtype=np.float32)
    ulps = np.abs(ours.view(np.int32).astype(np.int64) - want.view(np.int32).astype(np.int64))
    return [f"{int((ulps > 2).sum())} rates differ by more than 2 ulps (worst {int(ulps.max())})"] if ulps.max() > 2 else []


def main(folder):
    torch.manual_seed(0)
    for case in ("sgd", "adam", "adamw"):
        verdict(case, train(folder, case))
    verdict("smooth", smooth(folder))
    verdict("augment", augment(folder))
    verdict("tta", tta(folder))
    verdict("ema", ema(folder))
    verdict("schedule", schedule(folder))
    print(f"recipe_torch: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
