/* LTC cell: forward and hand-derived backward over whole sequences, on synapse edge lists.
 *
 * Compiled on first use by ncp_control/cells/native.py (plain C99, no Python or torch headers) and called
 * through ctypes. The file includes itself twice to instantiate the code for float (suffix _f32) and double
 * (_f64). The equations are those of ltc_functional.py; the Python side documents the argument layout.
 *
 * Internally every per-sample quantity is stored transposed, [neuron][batch], so that the loops over the batch
 * are innermost and contiguous (the compiler vectorises them). Sums over edges and unfolds that become
 * parameter gradients are accumulated in double.
 */
#ifndef NCP_REAL

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The logistic sigmoid 1 / (1 + exp(-z)) in double without a libm call, so that the loops calling it vectorise.
 * exp(x) = 2^n * exp(r) with |r| <= ln(2)/2 and Cephes' Pade form exp(r) = (q + p) / (q - p) (about 1 ulp);
 * writing the sigmoid as (q - p) / ((q - p) + 2^n (q + p)) needs a single division. x = -z is clamped to
 * [-708, 709], where 2^n stays a normal number (the sigmoid is then 1 or below 1e-307 anyway). */
static inline double ncp_sigmoid(double z) {
    double x = -z;
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    const double magic = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer held in the low bits */
    double t = x * 1.4426950408889634074 + magic;
    double nf = t - magic;
    double r = x - nf * 6.93145751953125e-1; /* ln 2 split in two for an exact reduction */
    r = r - nf * 1.42860682030941723212e-6;
    double rr = r * r;
    double px = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr + 9.99999999999999999910e-1);
    double qx = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr + 2.27265548208155028766e-1) * rr
                + 2.00000000000000000009e0;
    int64_t ti, mi;
    memcpy(&ti, &t, sizeof ti);
    memcpy(&mi, &magic, sizeof mi);
    int64_t bits = (ti - mi + 1023) << 52; /* 2^n */
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    double den = qx - px;
    return den / (den + scale * (qx + px));
}

/* Layout of the integer argument array (int64). */
enum {
    D_T, D_B, D_N, D_I, D_M, D_K, D_E, D_ES, D_IN_MAP, D_OUT_MAP, D_IMPLICIT,
    D_X_ST, D_X_SB, D_H_SB, D_DT_ST, D_DT_SB, D_R_ST, D_R_SB, D_S_ST, D_S_SB, D_O_ST, D_O_SB,
    D_GS_ST, D_GS_SB, D_GO_ST, D_GO_SB, D_COUNT
};
/* Layout of the pointer argument array. */
enum {
    P_X, P_H0, P_DT, P_RESET, P_GLEAK, P_VLEAK, P_CM, P_W, P_EREV, P_MU, P_SIGMA, P_MASK,
    P_SW, P_SEREV, P_SMU, P_SSIGMA, P_SMASK, P_IN_W, P_IN_B, P_OUT_W, P_OUT_B,
    P_SRC, P_DST, P_SSRC, P_SDST, P_STATES, P_OUT, P_SAVED,
    /* backward only */
    P_GSTATES, P_GOUT, P_GX, P_GH0, P_GDT,
    P_GGLEAK, P_GVLEAK, P_GCM, P_GW, P_GEREV, P_GMU, P_GSIGMA,
    P_GSW, P_GSEREV, P_GSMU, P_GSSIGMA, P_GIN_W, P_GIN_B, P_GOUT_W, P_GOUT_B,
    /* optional: sequence-invariant terms computed by ltc_consts (5E + 5ES + 3N doubles) */
    P_CONSTS,
    /* ltc_step only: the values P_CONSTS was computed from (see sync_snapshot) */
    P_SNAP, P_COUNT
};

#define NCP_OK 0
#define NCP_ENOMEM 1
#define NCP_EBADTIME 2
#define NCP_ESTALE 3 /* ltc_step: a mask changed, the edge lists must be rebuilt by the caller */

#define NCP_REAL float
#define NCP_FN(name) name##_f32
#include __FILE__
#undef NCP_REAL
#undef NCP_FN

#define NCP_REAL double
#define NCP_FN(name) name##_f64
#include __FILE__
#undef NCP_REAL
#undef NCP_FN

#else /* ------------------------------------------------------------------ body, once per type */

#define real NCP_REAL
#define work double /* every computation runs in double; only inputs and outputs have the type real */

/* torch's softplus (beta 1, threshold 20) and its derivative. */
static inline work NCP_FN(softplus)(work x) { return x > 20 ? x : (work)log1p(exp((double)x)); }
static inline work NCP_FN(softplus_grad)(work x) {
    if (x > 20) return 1;
    work z = (work)exp((double)x);
    return z / (z + 1);
}

static inline work NCP_FN(sigmoid)(work z) { return ncp_sigmoid(z); }

/* Backward through one synapse (internal or sensory) over the batch: given the gradients dn, dd (B,) of the
 * postsynaptic numerator and denominator sums, its activation a = sigmoid(sigma (pre - mu)) (B,) and presynaptic
 * potential pre (B,), accumulate the parameter gradients (*g_w, *g_erev, *g_sig, *g_mu) and the presynaptic
 * gradient gpre (B,). */
static inline void NCP_FN(synapse_backward)(int64_t B, const work *pre, const work *a, const work *dn, const work *dd,
                                            work *gpre, work erev, work we, work sg, work mu,
                                            work *g_w, work *g_erev, work *g_sig, work *g_mu) {
    work r_w = 0, r_erev = 0, r_sig = 0, r_mu = 0;
#pragma omp simd reduction(+ : r_w, r_erev, r_sig, r_mu)
    for (int64_t b = 0; b < B; b++) {
        work t1 = dn[b] * erev + dd[b];
        r_w += t1 * a[b];
        r_erev += dn[b] * a[b];
        work dz = t1 * we * a[b] * (1 - a[b]);
        r_sig += dz * (pre[b] - mu);
        r_mu += dz;
        gpre[b] += dz * sg;
    }
    *g_w += r_w;
    *g_erev += r_erev;
    *g_sig += r_sig;
    *g_mu += r_mu;
}

/* Sequence-invariant terms gathered on the edges. */
typedef struct {
    work *we, *wer, *mu, *sig, *erev;      /* internal edges: positive weight * mask, times erev, mu, sigma, erev */
    work *swe, *swer, *smu, *ssig, *serev; /* sensory edges */
    work *gl, *glvl, *cm;           /* per neuron: positive gleak, gleak*vleak, positive cm */
    void *block;
} NCP_FN(consts);

static int NCP_FN(make_consts)(const int64_t *d, void **p, NCP_FN(consts) *c, int fill) {
    const int64_t N = d[D_N], E = d[D_E], ES = d[D_ES];
    const int implicit = (int)d[D_IMPLICIT];
    work *b = (work *)p[P_CONSTS];
    c->block = NULL;
    if (!b) {
        b = (work *)malloc(sizeof(work) * (size_t)(5 * E + 5 * ES + 3 * N + 1));
        if (!b) return NCP_ENOMEM;
        c->block = b;
    }
    c->we = b; c->wer = b + E; c->mu = b + 2 * E; c->sig = b + 3 * E; c->erev = b + 4 * E; b += 5 * E;
    c->swe = b; c->swer = b + ES; c->smu = b + 2 * ES; c->ssig = b + 3 * ES; c->serev = b + 4 * ES; b += 5 * ES;
    c->gl = b; c->glvl = b + N; c->cm = b + 2 * N;
    if (p[P_CONSTS] && !fill) return NCP_OK; /* precomputed by the caller */
    const int32_t *src = (const int32_t *)p[P_SRC], *dst = (const int32_t *)p[P_DST];
    const real *w = (const real *)p[P_W], *erev = (const real *)p[P_EREV], *mu = (const real *)p[P_MU];
    const real *sig = (const real *)p[P_SIGMA], *mask = (const real *)p[P_MASK];
    for (int64_t e = 0; e < E; e++) {
        int64_t at = (int64_t)src[e] * N + dst[e];
        work wv = implicit ? NCP_FN(softplus)(w[at]) : w[at];
        c->we[e] = wv * mask[at];
        c->wer[e] = c->we[e] * erev[at];
        c->mu[e] = mu[at];
        c->sig[e] = sig[at];
        c->erev[e] = erev[at];
    }
    const int32_t *ssrc = (const int32_t *)p[P_SSRC], *sdst = (const int32_t *)p[P_SDST];
    const real *sw = (const real *)p[P_SW], *serev = (const real *)p[P_SEREV], *smu = (const real *)p[P_SMU];
    const real *ssig = (const real *)p[P_SSIGMA], *smask = (const real *)p[P_SMASK];
    for (int64_t e = 0; e < ES; e++) {
        int64_t at = (int64_t)ssrc[e] * N + sdst[e];
        work wv = implicit ? NCP_FN(softplus)(sw[at]) : sw[at];
        c->swe[e] = wv * smask[at];
        c->swer[e] = c->swe[e] * serev[at];
        c->smu[e] = smu[at];
        c->ssig[e] = ssig[at];
        c->serev[e] = serev[at];
    }
    const real *gleak = (const real *)p[P_GLEAK], *vleak = (const real *)p[P_VLEAK], *cm = (const real *)p[P_CM];
    for (int64_t j = 0; j < N; j++) {
        c->gl[j] = implicit ? NCP_FN(softplus)(gleak[j]) : gleak[j];
        c->glvl[j] = c->gl[j] * vleak[j];
        c->cm[j] = implicit ? NCP_FN(softplus)(cm[j]) : cm[j];
    }
    return NCP_OK;
}

/* Mapped inputs of step t, transposed: u[i*B + b]. */
static void NCP_FN(map_inputs)(const int64_t *d, void **p, int64_t t, work *u) {
    const int64_t B = d[D_B], I = d[D_I];
    const real *x = (const real *)p[P_X], *iw = (const real *)p[P_IN_W], *ib = (const real *)p[P_IN_B];
    const int mapping = (int)d[D_IN_MAP];
    for (int64_t b = 0; b < B; b++) {
        const real *xr = x + t * d[D_X_ST] + b * d[D_X_SB];
        for (int64_t i = 0; i < I; i++) {
            work v = xr[i];
            if (mapping >= 1) v = v * iw[i];
            if (mapping == 2) v = v + ib[i];
            u[i * B + b] = v;
        }
    }
}

/* Synapse sums sum_e w_e erev_e a_e and sum_e w_e a_e, a_e = sigmoid(sigma_e (x_src - mu_e)), into num[dst][b]
 * and den[dst][b] (zeroed first); activations left in act[e][b]. Three passes, so that the costly one (the
 * sigmoids) is a single long vector loop over E*B values even when the batch is small. */
static void NCP_FN(edge_sums)(int64_t E, int64_t N, int64_t B, const int32_t *src, const int32_t *dst,
                              const work *sig, const work *mu, const work *wer, const work *we, const work *x,
                              work *num, work *den, work *act) {
    for (int64_t e = 0; e < E; e++) {
        const work *xs = x + (int64_t)src[e] * B;
        const work s = sig[e], m = mu[e];
        work *z = act + e * B;
        for (int64_t b = 0; b < B; b++) z[b] = s * (xs[b] - m);
    }
    const int64_t n = E * B;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) act[i] = ncp_sigmoid(act[i]);
    memset(num, 0, sizeof(work) * (size_t)(N * B));
    memset(den, 0, sizeof(work) * (size_t)(N * B));
    for (int64_t e = 0; e < E; e++) {
        work *nj = num + (int64_t)dst[e] * B, *dj = den + (int64_t)dst[e] * B;
        const work *a = act + e * B;
        const work w1 = wer[e], w0 = we[e];
        for (int64_t b = 0; b < B; b++) {
            nj[b] += a[b] * w1;
            dj[b] += a[b] * w0;
        }
    }
}

/* Sensory numerator/denominator sums of step t (sn, sd: [N][B]) from mapped inputs u; activations in sact. */
static void NCP_FN(sensory)(const int64_t *d, void **p, const NCP_FN(consts) *c, const work *u, work *sn, work *sd,
                            work *sact) {
    NCP_FN(edge_sums)(d[D_ES], d[D_N], d[D_B], (const int32_t *)p[P_SSRC], (const int32_t *)p[P_SDST], c->ssig,
                      c->smu, c->swer, c->swe, u, sn, sd, sact);
}

/* Capacitance over sub-step length, cmt[j*B + b] = cm_j / (dt'_b / K), and sub[b] = dt'_b / K. */
static int NCP_FN(capacitance)(const int64_t *d, void **p, const NCP_FN(consts) *c, int64_t t, double min_dt,
                               work *cmt, work *sub) {
    const int64_t B = d[D_B], N = d[D_N], K = d[D_K];
    const real *dt = (const real *)p[P_DT];
    for (int64_t b = 0; b < B; b++) {
        work v = dt[t * d[D_DT_ST] + b * d[D_DT_SB]];
        if (!(v >= 0)) return NCP_EBADTIME; /* negative or NaN */
        if (v < (work)min_dt) v = (work)min_dt;
        sub[b] = v / (work)K;
    }
    for (int64_t j = 0; j < N; j++)
        for (int64_t b = 0; b < B; b++) cmt[j * B + b] = c->cm[j] / sub[b];
    return NCP_OK;
}

/* Synaptic sums of one unfold from potentials v: an[j][b] = sum w*erev*act, ad[j][b] = sum w*act. */
static void NCP_FN(synapses)(const int64_t *d, void **p, const NCP_FN(consts) *c, const work *v, work *an, work *ad,
                             work *act) {
    NCP_FN(edge_sums)(d[D_E], d[D_N], d[D_B], (const int32_t *)p[P_SRC], (const int32_t *)p[P_DST], c->sig, c->mu,
                      c->wer, c->we, v, an, ad, act);
}

/* Fill p[P_CONSTS] (5E + 5ES + 3N doubles) with the sequence-invariant terms, for reuse by later calls that
 * pass the same buffer (the caller recomputes it whenever a parameter changes). */
int NCP_FN(ltc_consts)(const int64_t *d, void **p) {
    NCP_FN(consts) c;
    if (!p[P_CONSTS]) return NCP_ENOMEM;
    return NCP_FN(make_consts)(d, p, &c, 1);
}

/* Forward over T steps. Writes states (T,B,N) and, if given, outputs (T,B,M) and the potentials at the start
 * of every unfold, saved[((t*K + k)*N + j)*B + b], for the backward pass. */
int NCP_FN(ltc_forward)(const int64_t *d, void **p, double epsilon, double min_dt) {
    const int64_t T = d[D_T], B = d[D_B], N = d[D_N], I = d[D_I], M = d[D_M], K = d[D_K];
    NCP_FN(consts) c;
    if (NCP_FN(make_consts)(d, p, &c, 0) != NCP_OK) return NCP_ENOMEM;
    work *ws = (work *)malloc(sizeof(work) * (size_t)(7 * N * B + I * B + B + (d[D_E] + d[D_ES]) * B));
    if (!ws) { free(c.block); return NCP_ENOMEM; }
    work *act = ws + 7 * N * B + I * B + B, *sact = act + d[D_E] * B;
    work *v = ws, *an = ws + N * B, *ad = ws + 2 * N * B, *sn = ws + 3 * N * B, *sd = ws + 4 * N * B;
    work *cmt = ws + 5 * N * B, *u = ws + 7 * N * B, *sub = ws + 7 * N * B + I * B;
    const real *h0 = (const real *)p[P_H0];
    const uint8_t *reset = (const uint8_t *)p[P_RESET];
    real *states = (real *)p[P_STATES], *out = (real *)p[P_OUT];
    work *saved = (work *)p[P_SAVED];
    const real *ow = (const real *)p[P_OUT_W], *ob = (const real *)p[P_OUT_B];
    const int out_map = (int)d[D_OUT_MAP];
    int status = NCP_OK;

    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < N; j++) v[j * B + b] = h0[b * d[D_H_SB] + j];
    for (int64_t t = 0; t < T && status == NCP_OK; t++) {
        if (reset)
            for (int64_t b = 0; b < B; b++)
                if (reset[t * d[D_R_ST] + b * d[D_R_SB]])
                    for (int64_t j = 0; j < N; j++) v[j * B + b] = 0;
        status = NCP_FN(capacitance)(d, p, &c, t, min_dt, cmt, sub);
        if (status != NCP_OK) break;
        NCP_FN(map_inputs)(d, p, t, u);
        NCP_FN(sensory)(d, p, &c, u, sn, sd, sact);
        for (int64_t k = 0; k < K; k++) {
            if (saved) memcpy(saved + (t * K + k) * N * B, v, sizeof(work) * (size_t)(N * B));
            NCP_FN(synapses)(d, p, &c, v, an, ad, act);
            for (int64_t j = 0; j < N; j++) {
                const work glvl = c.glvl[j], gl = c.gl[j];
                work *vj = v + j * B;
                const work *cj = cmt + j * B, *anj = an + j * B, *adj = ad + j * B, *snj = sn + j * B,
                           *sdj = sd + j * B;
                for (int64_t b = 0; b < B; b++) {
                    work num = cj[b] * vj[b] + glvl + (anj[b] + snj[b]);
                    work den = cj[b] + gl + (adj[b] + sdj[b]);
                    vj[b] = num / (den + (work)epsilon);
                }
            }
        }
        /* the state between steps has the caller's precision, so that a sequence equals its steps run one by one */
        for (int64_t i = 0; i < N * B; i++) v[i] = (work)(real)v[i];
        for (int64_t b = 0; b < B; b++) {
            real *s = states + t * d[D_S_ST] + b * d[D_S_SB];
            for (int64_t j = 0; j < N; j++) s[j] = (real)v[j * B + b];
            if (out) {
                real *o = out + t * d[D_O_ST] + b * d[D_O_SB];
                for (int64_t m = 0; m < M; m++) {
                    work y = v[m * B + b];
                    if (out_map >= 1) y = y * ow[m];
                    if (out_map == 2) y = y + ob[m];
                    o[m] = y;
                }
            }
        }
    }
    free(ws);
    free(c.block);
    return status;
}

/* Keep the cached constants P_CONSTS true to the parameters. The snapshot p[P_SNAP] (type real) holds both
 * masks whole (N*N + I*N), then the raw values the constants come from: w, erev, mu, sigma at the internal edges
 * (4E), the same four at the sensory edges (4ES) and gleak, vleak, cm (3N). Every value is compared bit for bit
 * with the parameter memory (so a change made behind autograd's back, such as p.data.mul_(), which leaves the
 * version counter alone, is seen too) and copied; any difference recomputes the constants. Returns NCP_ESTALE if a
 * mask changed (the edge lists no longer hold: the caller rebuilds its tables), else NCP_OK. With `force` the
 * constants are recomputed whatever the comparison says. */
static int NCP_FN(sync_snapshot)(const int64_t *d, void **p, int force) {
    const int64_t N = d[D_N], I = d[D_I], E = d[D_E], ES = d[D_ES];
    real *s = (real *)p[P_SNAP];
    if (memcmp(s, p[P_MASK], sizeof(real) * (size_t)(N * N)) != 0 ||
        memcmp(s + N * N, p[P_SMASK], sizeof(real) * (size_t)(I * N)) != 0)
        return NCP_ESTALE;
    s += N * N + I * N;
    int changed = force;
    const int32_t *src = (const int32_t *)p[P_SRC], *dst = (const int32_t *)p[P_DST];
    const real *w = (const real *)p[P_W], *erev = (const real *)p[P_EREV], *mu = (const real *)p[P_MU];
    const real *sig = (const real *)p[P_SIGMA];
    for (int64_t e = 0; e < E; e++, s += 4) {
        const int64_t at = (int64_t)src[e] * N + dst[e];
        const real now[4] = {w[at], erev[at], mu[at], sig[at]};
        if (memcmp(s, now, sizeof now) != 0) {
            memcpy(s, now, sizeof now);
            changed = 1;
        }
    }
    const int32_t *ssrc = (const int32_t *)p[P_SSRC], *sdst = (const int32_t *)p[P_SDST];
    const real *sw = (const real *)p[P_SW], *serev = (const real *)p[P_SEREV], *smu = (const real *)p[P_SMU];
    const real *ssig = (const real *)p[P_SSIGMA];
    for (int64_t e = 0; e < ES; e++, s += 4) {
        const int64_t at = (int64_t)ssrc[e] * N + sdst[e];
        const real now[4] = {sw[at], serev[at], smu[at], ssig[at]};
        if (memcmp(s, now, sizeof now) != 0) {
            memcpy(s, now, sizeof now);
            changed = 1;
        }
    }
    const real *vecs[3] = {(const real *)p[P_GLEAK], (const real *)p[P_VLEAK], (const real *)p[P_CM]};
    for (int k = 0; k < 3; k++, s += N) {
        if (memcmp(s, vecs[k], sizeof(real) * (size_t)N) != 0) {
            memcpy(s, vecs[k], sizeof(real) * (size_t)N);
            changed = 1;
        }
    }
    if (changed) {
        NCP_FN(consts) c;
        NCP_FN(make_consts)(d, p, &c, 1);
    }
    return NCP_OK;
}

/* Start a snapshot for sync_snapshot (p[P_SNAP]: N*N + I*N + 4E + 4ES + 3N values of type real) and compute
 * the constants into p[P_CONSTS]. */
int NCP_FN(ltc_snapshot)(const int64_t *d, void **p) {
    const int64_t N = d[D_N], I = d[D_I];
    real *s = (real *)p[P_SNAP];
    if (!s || !p[P_CONSTS]) return NCP_ENOMEM;
    memcpy(s, p[P_MASK], sizeof(real) * (size_t)(N * N));
    memcpy(s + N * N, p[P_SMASK], sizeof(real) * (size_t)(I * N));
    return NCP_FN(sync_snapshot)(d, p, 1);
}

/* One no-grad step (T = 1) with the tables d and p prebuilt by the caller (ltc_fast._StepPlan, one per thread),
 * so that Python passes only what changes between calls, packed in one array `call`:
 *   call[0..4]: addresses of x (B,I), h0 (B,N), dt (NULL: use the number in call[8]), states (B,N), out (B,M);
 *   call[5..7]: batch strides of x, h0 and dt; call[8..10]: (as double bits) dt, epsilon, min_dt.
 * A number dt is converted to the tensors' type first, as a tensor holding it would be. The per-call entries
 * of d and p are overwritten; p[P_DT] is cleared again before returning. The cached constants are checked
 * against the parameters first (sync_snapshot); NCP_ESTALE asks the caller to rebuild the tables. */
int NCP_FN(ltc_step)(int64_t *d, void **p, const int64_t *call) {
    double v[3];
    memcpy(v, call + 8, sizeof v);
    real dt_number = (real)v[0];
    p[P_X] = (void *)(intptr_t)call[0];
    p[P_H0] = (void *)(intptr_t)call[1];
    p[P_DT] = call[2] ? (void *)(intptr_t)call[2] : (void *)&dt_number;
    p[P_STATES] = (void *)(intptr_t)call[3];
    p[P_OUT] = (void *)(intptr_t)call[4];
    d[D_X_SB] = call[5];
    d[D_H_SB] = call[6];
    d[D_DT_SB] = call[2] ? call[7] : 0;
    int status = NCP_FN(sync_snapshot)(d, p, 0);
    if (status == NCP_OK) status = NCP_FN(ltc_forward)(d, p, v[1], v[2]);
    p[P_DT] = NULL;
    return status;
}

/* Backward of ltc_forward. Gradients of the parameters are written (not accumulated) at the edges of the
 * dense (N,N)/(I,N) arrays, which the caller zero-fills; gx (T,B,I) and gdt (T,B) are contiguous and optional.
 * gstates (T,B,N) and gout (T,B,M) are the incoming gradients (either may be NULL). */
int NCP_FN(ltc_backward)(const int64_t *d, void **p, double epsilon, double min_dt) {
    const int64_t T = d[D_T], B = d[D_B], N = d[D_N], I = d[D_I], M = d[D_M], K = d[D_K], E = d[D_E],
                  ES = d[D_ES];
    const int implicit = (int)d[D_IMPLICIT], in_map = (int)d[D_IN_MAP], out_map = (int)d[D_OUT_MAP];
    NCP_FN(consts) c;
    if (NCP_FN(make_consts)(d, p, &c, 0) != NCP_OK) return NCP_ENOMEM;
    const size_t nb = (size_t)(N * B);
    work *ws = (work *)malloc(sizeof(work) * (11 * nb + (size_t)(E * B + ES * B + 2 * I * B + B)));
    /* double accumulators: per edge 4 (internal) + 4 (sensory), per neuron 4, per input 2, per motor 2 */
    double *acc = (double *)calloc((size_t)(4 * E + 4 * ES + 4 * N + 2 * I + 2 * M + 1), sizeof(double));
    if (!ws || !acc) { free(ws); free(acc); free(c.block); return NCP_ENOMEM; }
    work *g = ws, *gn = ws + nb, *an = ws + 2 * nb, *ad = ws + 3 * nb, *sn = ws + 4 * nb, *sd = ws + 5 * nb;
    work *cmt = ws + 6 * nb, *dsn = ws + 7 * nb, *dsd = ws + 8 * nb, *dnum = ws + 9 * nb, *dden = ws + 10 * nb;
    work *act = ws + 11 * nb, *sact = act + E * B, *u = sact + ES * B, *du = u + I * B, *sub = du + I * B;
    double *a_w = acc, *a_erev = acc + E, *a_sig = acc + 2 * E, *a_mu = acc + 3 * E;
    double *s_w = acc + 4 * E, *s_erev = s_w + ES, *s_sig = s_w + 2 * ES, *s_mu = s_w + 3 * ES;
    double *n_cm = s_w + 4 * ES, *n_gl = n_cm + N, *n_glvl = n_cm + 2 * N, *n_unused = n_cm + 3 * N;
    double *i_w = n_cm + 4 * N, *i_b = i_w + I, *o_w = i_b + I, *o_b = o_w + M;
    (void)n_unused;

    const int32_t *src = (const int32_t *)p[P_SRC], *dst = (const int32_t *)p[P_DST];
    const int32_t *ssrc = (const int32_t *)p[P_SSRC], *sdst = (const int32_t *)p[P_SDST];
    const uint8_t *reset = (const uint8_t *)p[P_RESET];
    const real *x = (const real *)p[P_X], *dt = (const real *)p[P_DT];
    const real *states = (const real *)p[P_STATES];
    const work *saved = (const work *)p[P_SAVED];
    const real *gstates = (const real *)p[P_GSTATES], *gout = (const real *)p[P_GOUT];
    const real *iw = (const real *)p[P_IN_W], *ow = (const real *)p[P_OUT_W];
    real *gx = (real *)p[P_GX], *gh0 = (real *)p[P_GH0], *gdt = (real *)p[P_GDT];
    const work eps = (work)epsilon;
    int status = NCP_OK;

    memset(g, 0, sizeof(work) * nb);
    for (int64_t t = T - 1; t >= 0; t--) {
        /* incoming gradient on the state after step t */
        for (int64_t b = 0; b < B; b++) {
            if (gstates) {
                const real *gs = gstates + t * d[D_GS_ST] + b * d[D_GS_SB];
                for (int64_t j = 0; j < N; j++) g[j * B + b] += gs[j];
            }
            if (gout) {
                const real *go = gout + t * d[D_GO_ST] + b * d[D_GO_SB];
                const real *s = states + t * d[D_S_ST] + b * d[D_S_SB];
                for (int64_t m = 0; m < M; m++) {
                    work gm = go[m];
                    if (out_map >= 1) {
                        o_w[m] += (double)gm * s[m];
                        gm = gm * ow[m];
                    }
                    if (out_map == 2) o_b[m] += go[m];
                    g[m * B + b] += gm;
                }
            }
        }
        status = NCP_FN(capacitance)(d, p, &c, t, min_dt, cmt, sub);
        if (status != NCP_OK) break;
        NCP_FN(map_inputs)(d, p, t, u);
        NCP_FN(sensory)(d, p, &c, u, sn, sd, sact);
        memset(dsn, 0, sizeof(work) * nb);
        memset(dsd, 0, sizeof(work) * nb);
        real *gdt_t = gdt ? gdt + t * B : NULL;
        if (gdt_t) memset(gdt_t, 0, sizeof(real) * (size_t)B);
        for (int64_t k = K - 1; k >= 0; k--) {
            const work *v = saved + (t * K + k) * nb;
            NCP_FN(synapses)(d, p, &c, v, an, ad, act);
            for (int64_t j = 0; j < N; j++) {
                const work glvl = c.glvl[j], gl = c.gl[j], cmj = c.cm[j];
                const work *vj = v + j * B, *cj = cmt + j * B, *gj = g + j * B;
                work *dnj = dnum + j * B, *ddj = dden + j * B, *gnj = gn + j * B, *snj = dsn + j * B,
                     *sdj = dsd + j * B, *dvj = an + j * B; /* an is free once num is formed: reuse it */
                const work *anj = an + j * B, *adj = ad + j * B, *snv = sn + j * B, *sdv = sd + j * B;
                work s_cm = 0, s_num = 0, s_den = 0;
#pragma omp simd reduction(+ : s_cm, s_num, s_den)
                for (int64_t b = 0; b < B; b++) {
                    work num = cj[b] * vj[b] + glvl + (anj[b] + snv[b]);
                    work den = cj[b] + gl + (adj[b] + sdv[b]) + eps;
                    work vn = num / den;
                    work gnum = gj[b] / den;
                    work gden = -gnum * vn;
                    dnj[b] = gnum;
                    ddj[b] = gden;
                    gnj[b] = gnum * cj[b];
                    snj[b] += gnum;
                    sdj[b] += gden;
                    /* d/d cmt of num/den = (v - vn) / den: subtract first, v and vn are close (no cancellation) */
                    work gcmt = gnum * (vj[b] - vn);
                    dvj[b] = vj[b] - vn;
                    s_cm += gcmt / sub[b];
                    s_num += gnum;
                    s_den += gden;
                }
                n_cm[j] += s_cm;
                n_glvl[j] += s_num;
                n_gl[j] += s_den;
                if (gdt_t) { /* cmt = cm / sub, sub = dt' / K: d/d dt = -cm / (sub^2 K) where dt >= min_dt */
                    for (int64_t b = 0; b < B; b++) {
                        work gcmt = dnj[b] * dvj[b];
                        gdt_t[b] += -gcmt * cmj / (sub[b] * sub[b]) / (work)K;
                    }
                }
            }
            for (int64_t e = 0; e < E; e++)
                NCP_FN(synapse_backward)(B, v + src[e] * B, act + e * B, dnum + dst[e] * B, dden + dst[e] * B,
                                         gn + src[e] * B, c.erev[e], c.we[e], c.sig[e], c.mu[e],
                                         a_w + e, a_erev + e, a_sig + e, a_mu + e);
            work *tmp = g; g = gn; gn = tmp;
        }
        if (gdt_t)
            for (int64_t b = 0; b < B; b++)
                if (!(dt[t * d[D_DT_ST] + b * d[D_DT_SB]] >= (work)min_dt)) gdt_t[b] = 0; /* clamped: no gradient */
        /* sensory synapses */
        memset(du, 0, sizeof(work) * (size_t)(I * B));
        for (int64_t e = 0; e < ES; e++)
            NCP_FN(synapse_backward)(B, u + ssrc[e] * B, sact + e * B, dsn + sdst[e] * B, dsd + sdst[e] * B,
                                     du + ssrc[e] * B, c.serev[e], c.swe[e], c.ssig[e], c.smu[e],
                                     s_w + e, s_erev + e, s_sig + e, s_mu + e);
        /* input mapping */
        for (int64_t b = 0; b < B; b++) {
            const real *xr = x + t * d[D_X_ST] + b * d[D_X_SB];
            real *gxr = gx ? gx + (t * B + b) * I : NULL;
            for (int64_t i = 0; i < I; i++) {
                work gu = du[i * B + b];
                if (in_map >= 1) i_w[i] += (double)gu * xr[i];
                if (in_map == 2) i_b[i] += gu;
                if (gxr) gxr[i] = in_map >= 1 ? gu * iw[i] : gu;
            }
        }
        /* the state was zeroed before step t where an episode starts: no gradient flows further back */
        if (reset)
            for (int64_t b = 0; b < B; b++)
                if (reset[t * d[D_R_ST] + b * d[D_R_SB]])
                    for (int64_t j = 0; j < N; j++) g[j * B + b] = 0;
    }
    if (status == NCP_OK) {
        if (gh0)
            for (int64_t b = 0; b < B; b++)
                for (int64_t j = 0; j < N; j++) gh0[b * N + j] = g[j * B + b];
        /* from edge / neuron accumulators to the raw parameters */
        const real *w = (const real *)p[P_W], *mask = (const real *)p[P_MASK];
        real *gw = (real *)p[P_GW], *gerev = (real *)p[P_GEREV], *gmu = (real *)p[P_GMU], *gsig = (real *)p[P_GSIGMA];
        for (int64_t e = 0; e < E; e++) {
            const int64_t at = (int64_t)src[e] * N + dst[e];
            const work dpos = implicit ? NCP_FN(softplus_grad)(w[at]) : 1;
            /* w_e = pos(w) * mask: the erev term enters as w_e * erev */
            gw[at] = (real)(a_w[e] * mask[at] * dpos);
            gerev[at] = (real)(a_erev[e] * c.we[e]);
            gmu[at] = (real)(-a_mu[e] * c.sig[e]);
            gsig[at] = (real)a_sig[e];
        }
        const real *sw = (const real *)p[P_SW], *smask = (const real *)p[P_SMASK];
        real *gsw = (real *)p[P_GSW], *gserev = (real *)p[P_GSEREV], *gsmu = (real *)p[P_GSMU],
             *gssig = (real *)p[P_GSSIGMA];
        for (int64_t e = 0; e < ES; e++) {
            const int64_t at = (int64_t)ssrc[e] * N + sdst[e];
            const work dpos = implicit ? NCP_FN(softplus_grad)(sw[at]) : 1;
            gsw[at] = (real)(s_w[e] * smask[at] * dpos);
            gserev[at] = (real)(s_erev[e] * c.swe[e]);
            gsmu[at] = (real)(-s_mu[e] * c.ssig[e]);
            gssig[at] = (real)s_sig[e];
        }
        const real *gleak = (const real *)p[P_GLEAK], *vleak = (const real *)p[P_VLEAK], *cm = (const real *)p[P_CM];
        real *ggl = (real *)p[P_GGLEAK], *gvl = (real *)p[P_GVLEAK], *gcm = (real *)p[P_GCM];
        for (int64_t j = 0; j < N; j++) {
            ggl[j] = (real)((n_gl[j] + n_glvl[j] * vleak[j]) * (implicit ? NCP_FN(softplus_grad)(gleak[j]) : 1));
            gvl[j] = (real)(n_glvl[j] * c.gl[j]);
            gcm[j] = (real)(n_cm[j] * (implicit ? NCP_FN(softplus_grad)(cm[j]) : 1));
        }
        real *giw = (real *)p[P_GIN_W], *gib = (real *)p[P_GIN_B], *gow = (real *)p[P_GOUT_W], *gob = (real *)p[P_GOUT_B];
        for (int64_t i = 0; i < I; i++) {
            if (giw) giw[i] = (real)i_w[i];
            if (gib) gib[i] = (real)i_b[i];
        }
        for (int64_t m = 0; m < M; m++) {
            if (gow) gow[m] = (real)o_w[m];
            if (gob) gob[m] = (real)o_b[m];
        }
    }
    free(ws);
    free(acc);
    free(c.block);
    return status;
}

#undef real
#undef work

#endif
