"""Independent numpy reference for Kiln's schedulers (run with /usr/bin/python3).

For each case: the scheduler config, the step count, the inference timesteps and sigmas, and a complete
sampling run on an analytic problem whose exact denoiser is known: data x0 ~ N(MEAN, STD^2) per element,
so for x_t = sqrt(a) x0 + sqrt(1-a) eps the posterior mean E[x0 | x_t] is linear in x_t and the ideal
epsilon / v predictions follow in closed form. Initial noise and ancestral noise come from torch's CPU
generator (seed 0), exactly as diffusers draws them, so Java's generator is exercised too. The math is
written from the published formulas (DDIM, Karras et al. 2022, LMS, DPM-Solver++ 2M, LCM, PNDM's PLMS,
UniPC's bh2 predictor-corrector), in float64.

Command (from the repository root): /usr/bin/python3 runner/src/test/python/make_scheduler_reference.py
"""
import json
import math
import os
import sys

import numpy
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "reference", "schedulers.json")
MEAN, STD = 0.3, 0.5
SHAPE = [1, 4, 4, 4]

SD15 = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
        "prediction_type": "epsilon", "timestep_spacing": "leading", "steps_offset": 1, "clip_sample": False,
        "set_alpha_to_one": False}


def alphas_cumprod(config):
    count = config["num_train_timesteps"]
    if config["beta_schedule"] == "linear":
        betas = numpy.linspace(config["beta_start"], config["beta_end"], count)
    else:
        betas = numpy.linspace(config["beta_start"] ** 0.5, config["beta_end"] ** 0.5, count) ** 2
    return numpy.cumprod(1.0 - betas)


def spaced(config, steps, kind):
    """Timesteps (descending) for the three spacings; `kind` is ddim (integers) or sigma (floats)."""
    count = config["num_train_timesteps"]
    spacing = config["timestep_spacing"]
    if spacing == "linspace":
        values = numpy.linspace(0, count - 1, steps)[::-1]
        return values.round() if kind == "ddim" else values
    if spacing == "leading":
        ratio = count // steps
        return (numpy.arange(0, steps) * ratio)[::-1].astype(float) + config["steps_offset"]
    return numpy.round(numpy.arange(count, 0, -count / steps)) - 1.0


def karras(sigma_max, sigma_min, steps, rho=7.0):
    ramp = numpy.linspace(0, 1, steps)
    high, low = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return (high + ramp * (low - high)) ** rho


def sigma_to_timestep(sigma, log_sigmas):
    log_sigma = math.log(max(sigma, 1e-10))
    above = numpy.nonzero(log_sigmas <= log_sigma)[0]
    low = min(int(above[-1]) if len(above) else 0, len(log_sigmas) - 2)
    weight = (log_sigmas[low] - log_sigma) / (log_sigmas[low] - log_sigmas[low + 1])
    weight = min(max(weight, 0.0), 1.0)
    return (1 - weight) * low + weight * (low + 1)


class Problem:
    """The exact denoiser of Gaussian data, given x_t in variance-preserving form and alpha-bar."""

    @staticmethod
    def x0(sample, alpha):
        gain = math.sqrt(alpha) * STD ** 2 / (alpha * STD ** 2 + 1 - alpha)
        return MEAN + gain * (sample - math.sqrt(alpha) * MEAN)

    @staticmethod
    def predict(sample, alpha, prediction):
        x0 = Problem.x0(sample, alpha)
        eps = (sample - math.sqrt(alpha) * x0) / math.sqrt(1 - alpha)
        return eps if prediction == "epsilon" else math.sqrt(alpha) * eps - math.sqrt(1 - alpha) * x0


def to_x0(output, sample, alpha, prediction):
    if prediction == "epsilon":
        return (sample - math.sqrt(1 - alpha) * output) / math.sqrt(alpha)
    return math.sqrt(alpha) * sample - math.sqrt(1 - alpha) * output


def alpha_at(timestep, cumprod):
    """alpha-bar at a possibly fractional timestep, by linear interpolation of sigma like the schedulers do."""
    sigmas = numpy.sqrt((1 - cumprod) / cumprod)
    sigma = numpy.interp(timestep, numpy.arange(len(sigmas)), sigmas)
    return 1.0 / (1.0 + sigma ** 2)


def randn(generator):
    return torch.randn(SHAPE, generator=generator).numpy().astype(numpy.float64)


def run_ddim(config, steps, generator):
    cumprod = alphas_cumprod(config)
    timesteps = spaced(config, steps, "ddim").astype(int)
    final = 1.0 if config["set_alpha_to_one"] else cumprod[0]
    sample = randn(generator)
    for t in timesteps:
        previous = t - config["num_train_timesteps"] // steps
        alpha, alpha_previous = cumprod[t], (cumprod[previous] if previous >= 0 else final)
        output = Problem.predict(sample, alpha, config["prediction_type"])
        x0 = to_x0(output, sample, alpha, config["prediction_type"])
        if config["clip_sample"]:
            x0 = numpy.clip(x0, -1, 1)
        eps = (sample - math.sqrt(alpha) * x0) / math.sqrt(1 - alpha)
        sample = math.sqrt(alpha_previous) * x0 + math.sqrt(1 - alpha_previous) * eps
    return timesteps.astype(float), None, sample


def sigma_schedule(config, steps, use_karras):
    cumprod = alphas_cumprod(config)
    all_sigmas = numpy.sqrt((1 - cumprod) / cumprod)
    timesteps = spaced(config, steps, "sigma")
    sigmas = numpy.interp(timesteps, numpy.arange(len(all_sigmas)), all_sigmas)
    if use_karras:
        sigmas = karras(sigmas[0], sigmas[-1], steps)
        timesteps = numpy.array([sigma_to_timestep(s, numpy.log(all_sigmas)) for s in sigmas])
    return timesteps, numpy.append(sigmas, 0.0)


def init_sigma(config, sigmas):
    return sigmas[0] if config["timestep_spacing"] in ("linspace", "trailing") else math.sqrt(sigmas[0] ** 2 + 1)


def sigma_x0(sample, sigma, prediction):
    """The model sees sample / sqrt(sigma^2 + 1) with alpha-bar = 1 / (sigma^2 + 1)."""
    alpha = 1.0 / (sigma ** 2 + 1)
    scaled = sample / math.sqrt(sigma ** 2 + 1)
    output = Problem.predict(scaled, alpha, prediction)
    if prediction == "epsilon":
        return sample - sigma * output
    return output * (-sigma / math.sqrt(sigma ** 2 + 1)) + sample / (sigma ** 2 + 1)


def run_euler(config, steps, generator, ancestral=False, use_karras=False):
    timesteps, sigmas = sigma_schedule(config, steps, use_karras)
    sample = randn(generator) * init_sigma(config, sigmas)
    for index in range(steps):
        sigma, following = sigmas[index], sigmas[index + 1]
        x0 = sigma_x0(sample, sigma, config["prediction_type"])
        derivative = (sample - x0) / sigma
        if ancestral:
            up = math.sqrt(following ** 2 * (sigma ** 2 - following ** 2) / sigma ** 2)
            down = math.sqrt(following ** 2 - up ** 2)
            sample = sample + derivative * (down - sigma)
            sample = sample + randn(generator) * up
        else:
            sample = sample + derivative * (following - sigma)
    return timesteps, sigmas, sample


def lms_coefficient(sigmas, order, index, current):
    """Exact integral over [sigma_i, sigma_{i+1}] of the Lagrange basis polynomial `current`."""
    basis = numpy.polynomial.Polynomial([1.0])
    for other in range(order):
        if other != current:
            basis *= numpy.polynomial.Polynomial([-sigmas[index - other], 1.0]) / (sigmas[index - current] - sigmas[index - other])
    integral = basis.integ()
    return integral(sigmas[index + 1]) - integral(sigmas[index])


def run_lms(config, steps, generator, order=4):
    timesteps, sigmas = sigma_schedule(config, steps, False)
    sample = randn(generator) * init_sigma(config, sigmas)
    derivatives = []
    for index in range(steps):
        sigma = sigmas[index]
        x0 = sigma_x0(sample, sigma, config["prediction_type"])
        derivatives.insert(0, (sample - x0) / sigma)
        del derivatives[order:]
        used = min(index + 1, order)
        sample = sample + sum(lms_coefficient(sigmas, used, index, k) * derivatives[k] for k in range(used))
    return timesteps, sigmas, sample


def alpha_sigma(sigma):
    """alpha_t and sigma_t of a variance-preserving sample at noise level sigma (= sigma_t / alpha_t)."""
    alpha = 1.0 / math.sqrt(sigma ** 2 + 1)
    return alpha, sigma * alpha


def log_snr(sigma):
    """lambda = log(alpha_t / sigma_t); +inf at sigma = 0."""
    alpha, scaled = alpha_sigma(sigma)
    return math.log(alpha) - math.log(scaled) if scaled > 0 else math.inf


def multistep_timesteps(config, steps):
    """The multistep solvers' spacing: steps + 1 points for linspace/leading with the last (0) dropped."""
    count = config["num_train_timesteps"]
    spacing = config["timestep_spacing"]
    if spacing == "linspace":
        return numpy.linspace(0, count - 1, steps + 1).round()[::-1][:-1]
    if spacing == "leading":
        ratio = count // (steps + 1)
        return (numpy.arange(0, steps + 1) * ratio).round()[::-1][:-1] + config["steps_offset"]
    return numpy.arange(count, 0, -count / steps).round() - 1


def run_dpm(config, steps, generator, use_karras=False):
    cumprod = alphas_cumprod(config)
    all_sigmas = numpy.sqrt((1 - cumprod) / cumprod)
    timesteps = multistep_timesteps(config, steps)
    if use_karras:
        sigmas = karras(all_sigmas[-1], all_sigmas[0], steps)
        timesteps = numpy.array([sigma_to_timestep(s, numpy.log(all_sigmas)) for s in sigmas]).round()
    else:
        sigmas = numpy.interp(timesteps, numpy.arange(len(all_sigmas)), all_sigmas)
    sigmas = numpy.append(sigmas, 0.0)

    sample = randn(generator)
    outputs = []
    for index in range(steps):
        alpha_s, sigma_s = alpha_sigma(sigmas[index])
        output = Problem.predict(sample, alpha_s ** 2, config["prediction_type"])
        x0 = (sample - sigma_s * output) / alpha_s if config["prediction_type"] == "epsilon" else alpha_s * sample - sigma_s * output
        outputs.append(x0)
        alpha_t, sigma_t = alpha_sigma(sigmas[index + 1])
        h = log_snr(sigmas[index + 1]) - log_snr(sigmas[index])
        decay = math.exp(-h) if h != math.inf else 0.0
        first_order = index == 0 or index == steps - 1
        ratio = sigma_t / sigma_s
        if first_order:
            sample = ratio * sample - alpha_t * (decay - 1.0) * x0
        else:
            h_previous = log_snr(sigmas[index]) - log_snr(sigmas[index - 1])
            r0 = h_previous / h
            d0, d1 = outputs[-1], (outputs[-1] - outputs[-2]) / r0
            sample = ratio * sample - alpha_t * (decay - 1.0) * d0 - 0.5 * alpha_t * (decay - 1.0) * d1
    return timesteps.astype(float), sigmas, sample


def run_lcm(config, steps, generator, original_steps=50, scaling=10.0):
    cumprod = alphas_cumprod(config)
    count = config["num_train_timesteps"]
    origin = (numpy.arange(1, original_steps + 1) * (count // original_steps) - 1)[::-1]
    indices = numpy.floor(numpy.linspace(0, len(origin), num=steps, endpoint=False)).astype(int)
    timesteps = origin[indices]
    final = 1.0 if config["set_alpha_to_one"] else cumprod[0]
    sample = randn(generator)
    denoised = sample
    for index, t in enumerate(timesteps):
        previous = timesteps[index + 1] if index + 1 < steps else t
        alpha = cumprod[t]
        alpha_previous = cumprod[previous] if index + 1 < steps else final
        scaled = t * scaling
        c_skip = 0.25 / (scaled ** 2 + 0.25)
        c_out = scaled / math.sqrt(scaled ** 2 + 0.25)
        output = Problem.predict(sample, alpha, config["prediction_type"])
        x0 = to_x0(output, sample, alpha, config["prediction_type"])
        denoised = c_out * x0 + c_skip * sample
        if index + 1 < steps:
            sample = math.sqrt(alpha_previous) * denoised + math.sqrt(1 - alpha_previous) * randn(generator)
        else:
            sample = denoised
    return timesteps.astype(float), None, sample


def run_pndm(config, steps, generator):
    """PLMS (PNDM with skip_prk_steps): the second timestep is evaluated twice, the first transfer redone with
    the mean of both noise predictions, then Adams-Bashforth combinations of orders 2, 3 and 4 of the stored
    predictions feed the transfer of Liu et al. 2022, eq. 11."""
    cumprod = alphas_cumprod(config)
    ratio = config["num_train_timesteps"] // steps
    ascending = spaced(config, steps, "ddim").astype(int)[::-1]
    if steps == 1:
        timesteps = ascending
    else:
        timesteps = numpy.concatenate([ascending[:-1], ascending[-2:-1], ascending[-1:]])[::-1]
    final = 1.0 if config["set_alpha_to_one"] else cumprod[0]

    def transfer(x, t, t_prev, output):
        a, a_prev = cumprod[t], (cumprod[t_prev] if t_prev >= 0 else final)
        if config["prediction_type"] == "v_prediction":
            output = math.sqrt(a) * output + math.sqrt(1 - a) * x
        denominator = a * math.sqrt(1 - a_prev) + math.sqrt(a * (1 - a) * a_prev)
        return math.sqrt(a_prev / a) * x - (a_prev - a) * output / denominator

    sample = randn(generator)
    history = []
    first_sample = None
    for counter, t in enumerate(timesteps):
        output = Problem.predict(sample, cumprod[t], config["prediction_type"])
        if counter == 1:
            combined = (output + history[-1]) / 2
            sample = transfer(first_sample, t + ratio, t, combined)
            continue
        history = history[-3:] + [output]
        weights = {1: [1], 2: [-1, 3], 3: [5, -16, 23], 4: [-9, 37, -59, 55]}[len(history)]
        divisor = {1: 1, 2: 2, 3: 12, 4: 24}[len(history)]
        combined = sum(w * e for w, e in zip(weights, history)) / divisor
        if counter == 0:
            first_sample = sample
        sample = transfer(sample, t, t - ratio, combined)
    return timesteps.astype(float), None, sample


def run_unipc(config, steps, generator):
    """UniPC with B(h) = e^h - 1 (bh2), order 2, data prediction: each step corrects the previous sample with
    the new model output (UniC, rho from the linear system of the paper), then predicts (UniP, rho = 1/2 at
    order 2); the first step and the last (onto sigma 0) are first order."""
    cumprod = alphas_cumprod(config)
    all_sigmas = numpy.sqrt((1 - cumprod) / cumprod)
    timesteps = multistep_timesteps(config, steps)
    sigmas = numpy.append(numpy.interp(timesteps, numpy.arange(len(all_sigmas)), all_sigmas), 0.0)

    def coefficients(h, order):
        hh = -h
        phi = math.expm1(hh)
        b_h = math.expm1(hh)
        h_phi_k = phi / hh - 1
        factorial = 1
        b = []
        for i in range(1, order + 1):
            b.append(h_phi_k * factorial / b_h)
            factorial *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial
        return phi, b_h, b

    sample = randn(generator)
    x0s = []
    last_sample, last_order = None, 0
    for i in range(steps):
        alpha_i, scaled_i = alpha_sigma(sigmas[i])
        output = Problem.predict(sample, alpha_i ** 2, config["prediction_type"])
        x0 = (sample - scaled_i * output) / alpha_i if config["prediction_type"] == "epsilon" else alpha_i * sample - scaled_i * output
        if last_sample is not None:
            # UniC on the step from sigma[i-1] to sigma[i]
            alpha_t, scaled_t = alpha_sigma(sigmas[i])
            _, scaled_s = alpha_sigma(sigmas[i - 1])
            h = log_snr(sigmas[i]) - log_snr(sigmas[i - 1])
            phi, b_h, b = coefficients(h, last_order)
            m0 = x0s[-1]
            corrected = scaled_t / scaled_s * last_sample - alpha_t * phi * m0
            if last_order == 1:
                rho = [0.5]
                correction = rho[-1] * (x0 - m0)
            else:
                rk = (log_snr(sigmas[i - 2]) - log_snr(sigmas[i - 1])) / h
                rho = numpy.linalg.solve(numpy.array([[1.0, 1.0], [rk, 1.0]]), numpy.array(b))
                correction = rho[0] * (x0s[-2] - m0) / rk + rho[1] * (x0 - m0)
            sample = corrected - alpha_t * b_h * correction
        x0s.append(x0)
        order = min(2, steps - i, len(x0s))
        last_sample, last_order = sample, order
        # UniP from sigma[i] to sigma[i+1]
        alpha_t, scaled_t = alpha_sigma(sigmas[i + 1])
        _, scaled_s = alpha_sigma(sigmas[i])
        h = log_snr(sigmas[i + 1]) - log_snr(sigmas[i])
        phi = math.expm1(-h)
        prediction = scaled_t / scaled_s * sample - alpha_t * phi * x0s[-1]
        if order == 2:
            rk = (log_snr(sigmas[i - 1]) - log_snr(sigmas[i])) / h
            prediction = prediction - alpha_t * phi * 0.5 * (x0s[-2] - x0s[-1]) / rk
        sample = prediction
    return timesteps.astype(float), sigmas, sample


def config(**changes):
    result = dict(SD15)
    result.update(changes)
    return result


CASES = [
    ("ddim", config(), 20, {}),
    ("ddim", config(prediction_type="v_prediction", steps_offset=1), 25, {}),
    ("ddim", config(timestep_spacing="trailing", set_alpha_to_one=True), 10, {}),
    ("ddim", config(beta_schedule="linear", beta_start=0.0001, beta_end=0.02, timestep_spacing="linspace", clip_sample=True), 30, {}),
    ("euler", config(), 30, {}),
    ("euler", config(timestep_spacing="linspace"), 25, {}),
    ("euler", config(timestep_spacing="trailing", prediction_type="v_prediction"), 20, {}),
    ("euler", config(), 20, {"karras": True}),
    ("euler_ancestral", config(), 30, {}),
    ("euler_ancestral", config(timestep_spacing="trailing"), 1, {}),
    ("lms", config(), 30, {}),
    ("lms", config(timestep_spacing="linspace", prediction_type="v_prediction"), 20, {}),
    ("dpmpp_2m", config(), 20, {}),
    ("dpmpp_2m", config(timestep_spacing="linspace"), 15, {}),
    ("dpmpp_2m", config(), 20, {"karras": True}),
    ("dpmpp_2m", config(prediction_type="v_prediction", timestep_spacing="trailing"), 20, {}),
    ("lcm", config(), 4, {}),
    ("lcm", config(), 8, {}),
    ("pndm", config(), 50, {}),
    ("pndm", config(), 10, {}),
    ("pndm", config(timestep_spacing="trailing", prediction_type="v_prediction"), 20, {}),
    ("pndm", config(set_alpha_to_one=True, timestep_spacing="linspace"), 4, {}),
    ("unipc", config(), 20, {}),
    ("unipc", config(timestep_spacing="linspace"), 10, {}),
    ("unipc", config(prediction_type="v_prediction", timestep_spacing="trailing"), 15, {}),
]


def main():
    results = []
    for name, scheduler_config, steps, options in CASES:
        generator = torch.Generator("cpu").manual_seed(0)
        use_karras = options.get("karras", False)
        if name == "ddim":
            timesteps, sigmas, sample = run_ddim(scheduler_config, steps, generator)
        elif name == "euler":
            timesteps, sigmas, sample = run_euler(scheduler_config, steps, generator, use_karras=use_karras)
        elif name == "euler_ancestral":
            timesteps, sigmas, sample = run_euler(scheduler_config, steps, generator, ancestral=True)
        elif name == "lms":
            timesteps, sigmas, sample = run_lms(scheduler_config, steps, generator)
        elif name == "dpmpp_2m":
            timesteps, sigmas, sample = run_dpm(scheduler_config, steps, generator, use_karras=use_karras)
        elif name == "pndm":
            timesteps, sigmas, sample = run_pndm(scheduler_config, steps, generator)
        elif name == "unipc":
            timesteps, sigmas, sample = run_unipc(scheduler_config, steps, generator)
        else:
            timesteps, sigmas, sample = run_lcm(scheduler_config, steps, generator)
        results.append({"scheduler": name, "karras": use_karras, "config": scheduler_config, "steps": steps,
                        "timesteps": [float(t) for t in timesteps],
                        "sigmas": None if sigmas is None else [float(s) for s in sigmas],
                        "final": [float(v) for v in sample.reshape(-1)]})
    with open(OUT, "w", encoding="utf-8", newline="\n") as handle:
        json.dump({"mean": MEAN, "std": STD, "shape": SHAPE, "seed": 0, "cases": results}, handle, indent=1, sort_keys=True)
        handle.write("\n")
    print("wrote", len(results), "cases", file=sys.stderr)
    for r in results:
        final = numpy.array(r["final"])
        print(r["scheduler"], r["steps"], r["config"]["timestep_spacing"], r["config"]["prediction_type"], "karras" if r["karras"] else "",
              "ts", r["timesteps"][:4], "mean %.3f std %.3f" % (final.mean(), final.std()), file=sys.stderr)


if __name__ == "__main__":
    main()
