"""Fixed-width vector helpers for the numba kernels, written as LLVM IR (numba intrinsics).

numba leaves LLVM's SLP vectoriser off, and its loop vectoriser skips a 16-iteration loop (or
pays runtime alias checks on each entry), so a loop over the candidates of a window row stays
scalar. These helpers emit the vector instructions directly. A vector is LANES values of one
float dtype, either an accumulator on the stack (`vzeros`; touched only whole, it stays in a
register across a loop) or `ary.flat[start : start + LANES]` of a C-contiguous array:

    acc = vzeros(ary)                 # LANES zeros of ary's dtype, on the stack
    vadd_sq_diff(acc, ary, i, q)      # acc += (q - ary.flat[i : i + LANES]) ** 2
    vadd_prod(acc, ary, i, q)         # acc += q * ary.flat[i : i + LANES]
    vkeep(acc, mask, fill)            # lanes whose bit is clear in mask become fill
    vstore(ary, i, acc)               # ary.flat[i : i + LANES] = acc
    low = vinf(ary)                   # LANES +inf, on the stack
    vpush(low, acc)                   # per lane: low keeps min(low, acc), acc gets the max
    vmask_le(ary, i, limit)           # int64 bit mask of the lanes <= limit (NaN: clear)
    vmask_less(ary, i, limit)         # ... < limit
    vcount_le(ary, i, limit)          # number of lanes <= limit (vcount_less: < limit)
    popcount(mask)                    # set bits of an int64

No bounds checks: the caller keeps every vector inside its array. Multiply-adds are fused
(one rounding), which is deterministic. Only target-independent LLVM IR is emitted (vector
types, fma, ctpop), so the kernels compile wherever numba does; LLVM picks the instructions
(two AVX-512 registers per float64 vector, four NEON registers per float32 one, ...).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 16
_I32 = ir.IntType(32)


def _vector(context, dtype: types.Type) -> ir.VectorType:
    return ir.VectorType(context.get_value_type(dtype), LANES)


def _array_vec_ptr(context, builder, aryty: types.Array, ary, start) -> ir.Value:
    """<LANES x T>* to ary.flat[start] (a C-contiguous array)."""
    data = context.make_array(aryty)(context, builder, value=ary).data
    return builder.bitcast(builder.gep(data, [start]), _vector(context, aryty.dtype).as_pointer())


def _stack_vec_ptr(context, builder, dtype: types.Type, ptr) -> ir.Value:
    return builder.bitcast(ptr, _vector(context, dtype).as_pointer())


def _splat(context, builder, value, fromty: types.Type, dtype: types.Type) -> ir.Value:
    scalar = context.cast(builder, value, fromty, dtype)
    vec = builder.insert_element(ir.Constant(_vector(context, dtype), None), scalar, _I32(0))
    return builder.shuffle_vector(vec, vec, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _call(builder, name: str, ret: ir.Type, args: list[ir.Value]) -> ir.Value:
    fnty = ir.FunctionType(ret, [a.type for a in args])
    return builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), args)


def _suffix(vty: ir.VectorType) -> str:
    return f"v{vty.count}{'f32' if isinstance(vty.element, ir.FloatType) else 'f64'}"


def _bits(builder, lanes: ir.Value) -> ir.Value:
    """<LANES x i1> -> i64 bit mask."""
    return builder.zext(builder.bitcast(lanes, ir.IntType(LANES)), ir.IntType(64))


def _lane_mask(builder, mask: ir.Value) -> ir.Value:
    """i64 bit mask -> <LANES x i1>."""
    lanes = builder.trunc(mask, ir.IntType(LANES))
    return builder.bitcast(lanes, ir.VectorType(ir.IntType(1), LANES))


def _is_float_ptr(x: types.Type) -> bool:
    return isinstance(x, types.CPointer) and isinstance(x.dtype, types.Float)


def _is_float_array(x: types.Type) -> bool:
    return isinstance(x, types.Array) and isinstance(x.dtype, types.Float)


@intrinsic
def vzeros(typingctx, like):
    """A stack vector of LANES zeros with the dtype of the array `like` (a pointer)."""
    if not _is_float_array(like):
        return None
    dtype = like.dtype

    def codegen(context, builder, sig, args):
        vty = _vector(context, dtype)
        ptr = cgutils.alloca_once(builder, vty)
        builder.store(ir.Constant(vty, None), ptr)
        return builder.bitcast(ptr, context.get_value_type(dtype).as_pointer())

    return types.CPointer(dtype)(like), codegen


def _accumulate(square: bool):
    def typer(typingctx, acc, ary, start, q):
        if not (_is_float_ptr(acc) and _is_float_array(ary) and ary.dtype == acc.dtype):
            return None
        dtype = acc.dtype

        def codegen(context, builder, sig, args):
            acc_ptr, ary_v, start_v, q_v = args
            ap = _stack_vec_ptr(context, builder, dtype, acc_ptr)
            kp = _array_vec_ptr(context, builder, sig.args[1], ary_v, start_v)
            kv = builder.load(kp, align=1)
            qv = _splat(context, builder, q_v, sig.args[3], dtype)
            a = builder.load(ap)
            x, y = (builder.fsub(qv, kv),) * 2 if square else (qv, kv)
            builder.store(_call(builder, f"llvm.fma.{_suffix(a.type)}", a.type, [x, y, a]), ap)
            return context.get_dummy_value()

        return types.void(acc, ary, start, q), codegen

    return typer


vadd_sq_diff = intrinsic(_accumulate(square=True))
vadd_prod = intrinsic(_accumulate(square=False))


@intrinsic
def vkeep(typingctx, acc, mask, fill):
    """Lanes of acc whose bit is clear in mask (an int) become fill."""
    if not _is_float_ptr(acc):
        return None
    dtype = acc.dtype

    def codegen(context, builder, sig, args):
        ap = _stack_vec_ptr(context, builder, dtype, args[0])
        keep = _lane_mask(builder, context.cast(builder, args[1], sig.args[1], types.int64))
        other = _splat(context, builder, args[2], sig.args[2], dtype)
        builder.store(builder.select(keep, builder.load(ap), other), ap)
        return context.get_dummy_value()

    return types.void(acc, mask, fill), codegen


@intrinsic
def vstore(typingctx, ary, start, acc):
    """ary.flat[start : start + LANES] = acc."""
    if not (_is_float_ptr(acc) and _is_float_array(ary) and ary.dtype == acc.dtype):
        return None
    dtype = acc.dtype

    def codegen(context, builder, sig, args):
        ary_v, start_v, acc_ptr = args
        a = builder.load(_stack_vec_ptr(context, builder, dtype, acc_ptr))
        builder.store(a, _array_vec_ptr(context, builder, sig.args[0], ary_v, start_v), align=1)
        return context.get_dummy_value()

    return types.void(ary, start, acc), codegen


@intrinsic
def vinf(typingctx, like):
    """A stack vector of LANES +inf with the dtype of the array `like` (a pointer)."""
    if not _is_float_array(like):
        return None
    dtype = like.dtype

    def codegen(context, builder, sig, args):
        vty = _vector(context, dtype)
        ptr = cgutils.alloca_once(builder, vty)
        builder.store(ir.Constant(vty, [float("inf")] * LANES), ptr)
        return builder.bitcast(ptr, context.get_value_type(dtype).as_pointer())

    return types.CPointer(dtype)(like), codegen


@intrinsic
def vpush(typingctx, low, acc):
    """Per lane: low keeps the smaller of it and acc, acc the other one (a NaN stays in acc).
    Pushing acc through r such vectors keeps each lane's r smallest values in them."""
    if not (_is_float_ptr(low) and _is_float_ptr(acc) and low.dtype == acc.dtype):
        return None
    dtype = acc.dtype

    def codegen(context, builder, sig, args):
        lp = _stack_vec_ptr(context, builder, dtype, args[0])
        ap = _stack_vec_ptr(context, builder, dtype, args[1])
        a, lo = builder.load(ap), builder.load(lp)
        smaller = builder.fcmp_ordered("<", a, lo)
        builder.store(builder.select(smaller, a, lo), lp)
        builder.store(builder.select(smaller, lo, a), ap)
        return context.get_dummy_value()

    return types.void(low, acc), codegen


def _array_compare(op: str, reduce: str):
    def typer(typingctx, ary, start, limit):
        if not _is_float_array(ary):
            return None
        dtype = ary.dtype

        def codegen(context, builder, sig, args):
            vp = _array_vec_ptr(context, builder, sig.args[0], args[0], args[1])
            v = builder.load(vp, align=1)
            lim = _splat(context, builder, args[2], sig.args[2], dtype)
            hit = builder.fcmp_ordered(op, v, lim)
            if reduce == "mask":
                return _bits(builder, hit)
            bits = builder.bitcast(hit, ir.IntType(LANES))
            count = _call(builder, f"llvm.ctpop.i{LANES}", bits.type, [bits])
            return builder.zext(count, ir.IntType(64))

        return types.int64(ary, start, limit), codegen

    return typer


vmask_le = intrinsic(_array_compare("<=", "mask"))
vmask_less = intrinsic(_array_compare("<", "mask"))
vcount_le = intrinsic(_array_compare("<=", "count"))
vcount_less = intrinsic(_array_compare("<", "count"))


@intrinsic
def popcount(typingctx, x):
    """Number of set bits of an int64."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = context.cast(builder, args[0], sig.args[0], types.int64)
        return _call(builder, "llvm.ctpop.i64", v.type, [v])

    return types.int64(x), codegen
