// CUDA device discovery for the backend: whether a device can run this build's kernels, and why
// not. Never throws; safe to call on a machine without a driver or a GPU.
#pragma once

#include <string>

namespace pytransformer::kernels::cuda {

// Devices the runtime sees (0 when there is no driver or no GPU).
int device_count();

// "" when `device` exists and this build has kernels for it; otherwise why not, phrased to
// follow "CUDA requested but ..." (e.g. "no NVIDIA driver is installed (cudaErrorInsufficientDriver)").
std::string device_problem(int device);

// "NVIDIA A100-SXM4-40GB (sm_80, 40 GiB)" for an available device.
std::string device_description(int device);

}  // namespace pytransformer::kernels::cuda
