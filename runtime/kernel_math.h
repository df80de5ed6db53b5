/* kernel_math.h — small helpers shared by the fused kernels (attention.c,
 * lstm.c, xent.c): an exp that GCC can vectorise, and the function-clone
 * attribute that compiles a kernel once per instruction set.
 *
 * glibc's expf is accurate but a call, so a loop around it stays scalar
 * (libmvec's vector expf is only used under -ffast-math).  nncrt_expf is
 * Cephes' expf written without branches: x = n ln2 + r with n rounded by
 * the 1.5 * 2^23 trick, e^r by a degree-7 polynomial, 2^n built in the
 * exponent bits.  Its error is about 1 ulp (checked against double exp in
 * tests/runtime/test_rt_kernels.c).  Inputs below -87 give 0 (the true
 * value is under 2^-125, invisible next to a softmax sum of at least 1),
 * inputs above 88 give e^88 instead of overflowing, NaN stays NaN.
 */
#ifndef NNC_RUNTIME_KERNEL_MATH_H
#define NNC_RUNTIME_KERNEL_MATH_H

#include <stdint.h>
#include <string.h>

/* Hot kernels are compiled for AVX-512, AVX2 and the baseline, picked at
 * load time by an ifunc (the library itself targets generic x86-64).  A
 * kernel gives the same bits for any thread count on one machine; clones
 * may differ from each other in the last bit (the AVX-512 one fuses
 * multiply-adds). */
#ifdef NNCRT_CLONES
/* given on the command line: -DNNCRT_CLONES= tests one instruction set */
#elif defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NNCRT_CLONES                                                           \
    __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NNCRT_CLONES
#endif

#define NNCRT_INLINE static inline __attribute__((always_inline))

NNCRT_INLINE float nncrt_expf(float x)
{
    float xc = x < -87.0f ? -87.0f : x;
    xc = xc > 88.0f ? 88.0f : xc;
    const float shift = 12582912.0f; /* 1.5 * 2^23: adding it rounds */
    float t = xc * 1.44269504088896341f + shift;
    float n = t - shift;
    uint32_t bits; /* unsigned: NaN's garbage bits must not overflow */
    memcpy(&bits, &t, 4);
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    /* bits - 0x4B400000 is n as an integer, |n| <= 127 */
    uint32_t sb = (bits - 0x4B400000u + 127u) << 23;
    float s;
    memcpy(&s, &sb, 4);
    float y = p * s;
    return x < -87.0f ? 0.0f : y;
}

/* tanh as the generated code computes it (codegen/scalar.c cg_tanh, Cephes
 * tanhf): an odd polynomial for |x| < 0.625, else 1 - 2/(e^{2|x|} + 1)
 * with x's sign; both are computed and one selected, so a loop around it
 * vectorises (libm's tanhf is a call: it was a quarter of an LSTM step). */
NNCRT_INLINE float nncrt_tanhf(float x)
{
    float ax = x < 0 ? -x : x;
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = x + x * z * p;
    float large = 1.0f - 2.0f / (nncrt_expf(ax + ax) + 1.0f);
    large = x < 0 ? -large : large;
    return ax < 0.625f ? small : large;
}

#endif /* NNC_RUNTIME_KERNEL_MATH_H */
