"""Speed kernels and numerics: fused loops, losses, softmax, int8 products, precision rules; each with a reference test."""
