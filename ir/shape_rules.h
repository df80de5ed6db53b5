/* shape_rules.h — private to the shape rules (shape.c, shape_nn.c, shape_fused.c): the
 * context a rule sees, the message and type helpers both files use, and the
 * rules of shape_nn.c that the one table, ir_shape_rules in shape.c, points
 * at.  Nothing outside ir/shape*.c includes it; ir_infer and the table are
 * declared in ir.h. */
#ifndef NNC_IR_SHAPE_RULES_H
#define NNC_IR_SHAPE_RULES_H

#include "ir.h"

#include <stdarg.h>

/* Everything a rule sees: the ShapeRule arguments and the op itself, which
 * the messages name. */
typedef struct Ctx {
    const Module *m;
    Op op;
    const Type *in;
    int n_in;
    Attrs *attr;
    Type *out;
    int max_out;
    char *err;
    size_t errlen;
} Ctx;

typedef int (*RuleFn)(Ctx *c);

/* A type rendered for a message.  A struct, so sh_ts(&t).s can be passed to
 * printf directly: the temporary lives until the end of the full call. */
typedef struct TypeStr {
    char s[200];
} TypeStr;

/* shape.c: messages and type helpers */
TypeStr sh_ts(const Type *t);
const char *sh_op_word(Op op);
int sh_fail(Ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sh_fail_ops(Ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
Type sh_leading(const Type *t, int drop);
Type sh_without_first(const Type *t);
void sh_append_dim(Type *t, int64_t d);
bool sh_broadcast2(const Type *a, const Type *b, Type *out, int64_t clash[2]);
bool sh_need_f32(Ctx *c);
bool sh_need_rank(Ctx *c, const Type *t, int min);
bool sh_rank_fits(Ctx *c, int rank);
bool sh_norm_axis(Ctx *c, int32_t *axis, int rank);
int sh_one(Ctx *c, Type t);
int sh_infer_matmul(Ctx *c);

/* shape_nn.c: the rules of the neural-network ops */
int sh_infer_softmax(Ctx *c);
int sh_infer_norm(Ctx *c);
int sh_infer_gather(Ctx *c);
int sh_infer_causal_mask(Ctx *c);
int sh_infer_attention(Ctx *c);
int sh_infer_dropout(Ctx *c);
int sh_infer_scatter_add(Ctx *c);
int sh_infer_one_hot(Ctx *c);
int sh_infer_cross_entropy(Ctx *c);
int sh_infer_pair_loss(Ctx *c);
int sh_infer_scan(Ctx *c);
const Type *sh_body_arg(const Graph *g, int i);

/* shape_fused.c: the rules of the fused ops */
int sh_infer_lstm_cell(Ctx *c);
int sh_infer_lstm_cell_grad(Ctx *c);
int sh_infer_attention_grad(Ctx *c);
int sh_infer_softmax_xent(Ctx *c);
int sh_infer_fused(Ctx *c);
int sh_infer_matmul_epilogue(Ctx *c);

#endif
