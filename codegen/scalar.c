/* scalar.c — the math of every elementwise op on one element.
 *
 * Each function takes and returns LLVM scalars (f32, or i32 for the
 * comparisons of integer tensors) and is called from inside loop nests, so
 * the same formula serves plain elementwise ops and the composite ops
 * (losses, normalisations).  Definitions follow PyTorch: softplus switches
 * to the identity above 20, gelu is the erf form (libm erff), gelu_tanh the
 * GPT-2 form.  exp and tanh are computed inline (cg_exp, cg_tanh: Cephes'
 * single-precision polynomials, about 1 ulp), because a libm call keeps
 * the loop vectoriser away from every loop that uses them (softmax,
 * sigmoid, the recurrent cells); log/sqrt/fabs/pow are LLVM intrinsics,
 * erf and log1p libm calls. */
#include "codegen/cg.h"

#include <math.h>

#define PI      3.14159265358979323846
#define SQRT1_2 0.70710678118654752440

static LLVMValueRef fmul(Cg *c, LLVMValueRef a, LLVMValueRef b);
static LLVMValueRef fadd(Cg *c, LLVMValueRef a, LLVMValueRef b);

static LLVMValueRef call1(Cg *c, const char *intrinsic, LLVMValueRef x)
{
    return cg_intrinsic(c, intrinsic, c->f32, &x, 1);
}

static LLVMValueRef rt1(Cg *c, CgRtFn f, LLVMValueRef x)
{
    return cg_rt_call(c, f, &x, 1);
}

static LLVMValueRef fmul(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFMul(c->b, a, b, "");
}
static LLVMValueRef fadd(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFAdd(c->b, a, b, "");
}

/* p0 + p1 x + ... evaluated by Horner's rule; coefficients highest first. */
static LLVMValueRef horner(Cg *c, LLVMValueRef x, const double *coef, int n)
{
    LLVMValueRef p = cg_f32c(c, coef[0]);
    for (int i = 1; i < n; i++)
        p = fadd(c, fmul(c, p, x), cg_f32c(c, coef[i]));
    return p;
}

static LLVMValueRef select_if(Cg *c, LLVMRealPredicate pred, LLVMValueRef a,
                              double b, LLVMValueRef then, LLVMValueRef other)
{
    LLVMValueRef cond = LLVMBuildFCmp(c->b, pred, a, cg_f32c(c, b), "");
    return LLVMBuildSelect(c->b, cond, then, other, "");
}

/* 2^n for an integer-valued float n in [-75, 64], from exponent bits. */
static LLVMValueRef exp2_int(Cg *c, LLVMValueRef n)
{
    LLVMValueRef i = LLVMBuildFPToSI(c->b, n, c->i32, "");
    LLVMValueRef bits = LLVMBuildShl(
        c->b, LLVMBuildAdd(c->b, i, cg_i32c(c, 127), ""), cg_i32c(c, 23), "");
    return LLVMBuildBitCast(c->b, bits, c->f32, "");
}

/* e^x: n = round(x log2 e), r = x - n ln 2 (in two parts), e^r by a
 * degree-6 polynomial, times 2^n applied as two factors so that results
 * down to the denormals come out right.  Above 88.72 +inf, below -104 0,
 * NaN stays NaN. */
LLVMValueRef cg_exp(Cg *c, LLVMValueRef x)
{
    static const double p[] = {1.9875691500E-4, 1.3981999507E-3,
                               8.3334519073E-3, 4.1665795894E-2,
                               1.6666665459E-1, 5.0000001201E-1};
    LLVMValueRef xc =
        select_if(c, LLVMRealOLT, x, -104.0, cg_f32c(c, -104.0), x);
    xc = select_if(c, LLVMRealOGT, xc, 88.7228391, cg_f32c(c, 88.7228391), xc);
    LLVMValueRef t =
        fadd(c, fmul(c, xc, cg_f32c(c, 1.44269504088896341)), cg_f32c(c, 0.5));
    LLVMValueRef n = cg_intrinsic(c, "llvm.floor", c->f32, &t, 1);
    LLVMValueRef r =
        LLVMBuildFSub(c->b, xc, fmul(c, n, cg_f32c(c, 0.693359375)), "");
    r = LLVMBuildFSub(c->b, r, fmul(c, n, cg_f32c(c, -2.12194440E-4)), "");
    LLVMValueRef y = fmul(c, fmul(c, horner(c, r, p, 6), r), r);
    y = fadd(c, fadd(c, y, r), cg_f32c(c, 1.0));
    LLVMValueRef n_half = fmul(c, n, cg_f32c(c, 0.5));
    LLVMValueRef half = cg_intrinsic(c, "llvm.floor", c->f32, &n_half, 1);
    y = fmul(c, fmul(c, y, exp2_int(c, half)),
             exp2_int(c, LLVMBuildFSub(c->b, n, half, "")));
    y = select_if(c, LLVMRealOGT, x, 88.7228391, cg_f32c(c, INFINITY), y);
    y = select_if(c, LLVMRealOLT, x, -104.0, cg_f32c(c, 0.0), y);
    LLVMValueRef nan = LLVMBuildFCmp(c->b, LLVMRealUNO, x, x, "");
    return LLVMBuildSelect(c->b, nan, x, y, "");
}

/* tanh: an odd polynomial for |x| < 0.625, else 1 - 2/(e^{2|x|} + 1) with
 * x's sign (Cephes tanhf). */
LLVMValueRef cg_tanh(Cg *c, LLVMValueRef x)
{
    static const double p[] = {-5.70498872745E-3, 2.06390887954E-2,
                               -5.37397155531E-2, 1.33314422036E-1,
                               -3.33332819422E-1};
    LLVMValueRef ax = call1(c, "llvm.fabs", x);
    LLVMValueRef z = fmul(c, x, x);
    LLVMValueRef small = fadd(c, x, fmul(c, fmul(c, x, z), horner(c, z, p, 5)));
    LLVMValueRef e = cg_exp(c, fadd(c, ax, ax));
    LLVMValueRef large = LLVMBuildFSub(
        c->b, cg_f32c(c, 1.0),
        LLVMBuildFDiv(c->b, cg_f32c(c, 2.0), fadd(c, e, cg_f32c(c, 1.0)), ""),
        "");
    LLVMValueRef args[2] = {large, x};
    large = cg_intrinsic(c, "llvm.copysign", c->f32, args, 2);
    return select_if(c, LLVMRealOLT, ax, 0.625, small, large);
}

/* a > b ? a : b, a NaN on either side propagating as in torch.maximum. */
LLVMValueRef cg_fmax(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    LLVMValueRef gt = LLVMBuildFCmp(c->b, LLVMRealOGT, a, b, "");
    LLVMValueRef nan_a = LLVMBuildFCmp(c->b, LLVMRealUNO, a, a, "");
    return LLVMBuildSelect(c->b, LLVMBuildOr(c->b, gt, nan_a, ""), a, b, "");
}

static LLVMValueRef fmin_nan(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    LLVMValueRef lt = LLVMBuildFCmp(c->b, LLVMRealOLT, a, b, "");
    LLVMValueRef nan_a = LLVMBuildFCmp(c->b, LLVMRealUNO, a, a, "");
    return LLVMBuildSelect(c->b, LLVMBuildOr(c->b, lt, nan_a, ""), a, b, "");
}

static LLVMValueRef sigmoid(Cg *c, LLVMValueRef x)
{
    LLVMValueRef e = cg_exp(c, LLVMBuildFNeg(c->b, x, ""));
    return LLVMBuildFDiv(c->b, cg_f32c(c, 1.0), fadd(c, cg_f32c(c, 1.0), e),
                         "");
}

static LLVMValueRef gelu_tanh(Cg *c, LLVMValueRef x)
{
    LLVMValueRef x3 = fmul(c, fmul(c, x, x), x);
    LLVMValueRef inner = fmul(c, cg_f32c(c, sqrt(2.0 / PI)),
                              fadd(c, x, fmul(c, cg_f32c(c, 0.044715), x3)));
    LLVMValueRef t = cg_tanh(c, inner);
    return fmul(c, fmul(c, cg_f32c(c, 0.5), x), fadd(c, cg_f32c(c, 1.0), t));
}

static LLVMValueRef gelu_erf(Cg *c, LLVMValueRef x)
{
    LLVMValueRef e = rt1(c, CG_RT_ERFF, fmul(c, x, cg_f32c(c, SQRT1_2)));
    return fmul(c, fmul(c, cg_f32c(c, 0.5), x), fadd(c, cg_f32c(c, 1.0), e));
}

static LLVMValueRef softplus(Cg *c, LLVMValueRef x)
{
    LLVMValueRef big =
        LLVMBuildFCmp(c->b, LLVMRealOGT, x, cg_f32c(c, 20.0), "");
    LLVMValueRef soft = rt1(c, CG_RT_LOG1PF, cg_exp(c, x));
    return LLVMBuildSelect(c->b, big, x, soft, "");
}

static LLVMValueRef power(Cg *c, double p, LLVMValueRef x)
{
    if (p == 1.0)
        return x;
    if (p == 2.0)
        return fmul(c, x, x);
    if (p == 0.5)
        return call1(c, "llvm.sqrt", x);
    LLVMValueRef args[2] = {x, cg_f32c(c, p)};
    return cg_intrinsic(c, "llvm.pow", c->f32, args, 2);
}

LLVMValueRef cg_scalar_unary(Cg *c, Op op, double p, LLVMValueRef x)
{
    switch (op) {
    case OP_NEG: return LLVMBuildFNeg(c->b, x, "");
    case OP_EXP: return cg_exp(c, x);
    case OP_LOG: return call1(c, "llvm.log", x);
    case OP_SQRT: return call1(c, "llvm.sqrt", x);
    case OP_RSQRT:
        return LLVMBuildFDiv(c->b, cg_f32c(c, 1.0), call1(c, "llvm.sqrt", x),
                             "");
    case OP_ABS: return call1(c, "llvm.fabs", x);
    case OP_RELU: {
        LLVMValueRef pos =
            LLVMBuildFCmp(c->b, LLVMRealUGT, x, cg_f32c(c, 0.0), "");
        return LLVMBuildSelect(c->b, pos, x, cg_f32c(c, 0.0), "");
    }
    case OP_SIGMOID: return sigmoid(c, x);
    case OP_TANH: return cg_tanh(c, x);
    case OP_GELU: return gelu_erf(c, x);
    case OP_GELU_TANH: return gelu_tanh(c, x);
    case OP_SILU: return fmul(c, x, sigmoid(c, x));
    case OP_SOFTPLUS: return softplus(c, x);
    case OP_POW: return power(c, p, x);
    default:
        ir_internal_error("codegen", "%s is not a unary elementwise op",
                          ir_op_info[op].name);
    }
}

static LLVMValueRef compare(Cg *c, Op op, DType dt, LLVMValueRef a,
                            LLVMValueRef b)
{
    static const LLVMRealPredicate fp[] = {LLVMRealOLT, LLVMRealOLE,
                                           LLVMRealOGT, LLVMRealOGE,
                                           LLVMRealOEQ, LLVMRealUNE};
    static const LLVMIntPredicate ip[] = {LLVMIntSLT, LLVMIntSLE, LLVMIntSGT,
                                          LLVMIntSGE, LLVMIntEQ,  LLVMIntNE};
    int k = (int)op - (int)OP_LT;
    LLVMValueRef bit = dt == DT_I32 ? LLVMBuildICmp(c->b, ip[k], a, b, "")
                                    : LLVMBuildFCmp(c->b, fp[k], a, b, "");
    return LLVMBuildUIToFP(c->b, bit, c->f32, "");
}

LLVMValueRef cg_scalar_binary(Cg *c, Op op, DType dt, LLVMValueRef a,
                              LLVMValueRef b)
{
    switch (op) {
    case OP_ADD: return fadd(c, a, b);
    case OP_SUB: return LLVMBuildFSub(c->b, a, b, "");
    case OP_MUL: return fmul(c, a, b);
    case OP_DIV: return LLVMBuildFDiv(c->b, a, b, "");
    case OP_MAXIMUM: return cg_fmax(c, a, b);
    case OP_MINIMUM: return fmin_nan(c, a, b);
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE:
    case OP_EQ:
    case OP_NE: return compare(c, op, dt, a, b);
    default:
        ir_internal_error("codegen", "%s is not a binary elementwise op",
                          ir_op_info[op].name);
    }
}
