//! Special functions the sequential tests need, in log space so e-values of 10^300 and tail masses of 10^-300 stay
//! exact: the log beta function and the log of the regularized incomplete beta function (the Beta distribution's
//! CDF), by Lentz's continued fraction (Numerical Recipes §6.4) on the side where it converges fast.

/// ln B(a, b).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    libm::lgamma(a) + libm::lgamma(b) - libm::lgamma(a + b)
}

/// ln I_x(a, b): the log of the regularized incomplete beta function (P(X ≤ x) for X ~ Beta(a, b)).
pub fn ln_beta_cdf(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front(a, b, x) + continued_fraction(a, b, x).ln() - a.ln()
    } else {
        // I_x(a, b) = 1 − I_{1−x}(b, a), where the fraction converges; the result is not small here.
        let other = (ln_front(a, b, x) + continued_fraction(b, a, 1.0 - x).ln() - b.ln()).exp();
        (-other).ln_1p()
    }
}

/// ln(1 − I_x(a, b)): the log of the upper tail P(X > x) for X ~ Beta(a, b).
pub fn ln_beta_upper_tail(a: f64, b: f64, x: f64) -> f64 {
    ln_beta_cdf(b, a, 1.0 - x)
}

/// ln(x^a (1−x)^b / B(a, b)).
fn ln_front(a: f64, b: f64, x: f64) -> f64 {
    a * x.ln() + b * (1.0 - x).ln() - ln_beta(a, b)
}

/// The continued fraction of I_x(a, b) (modified Lentz).
fn continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const EPSILON: f64 = 1e-15;
    const MAX_TERMS: usize = 100_000;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / away_from_zero(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..MAX_TERMS {
        let m = m as f64;
        let m2 = 2.0 * m;
        h *= lentz_step(m * (b - m) * x / ((qam + m2) * (a + m2)), &mut c, &mut d);
        let delta = lentz_step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)), &mut c, &mut d);
        h *= delta;
        if (delta - 1.0).abs() < EPSILON {
            break;
        }
    }
    h
}

/// One term `aa` of the continued fraction: updates Lentz's `c` and `d`, returns the factor for the estimate.
fn lentz_step(aa: f64, c: &mut f64, d: &mut f64) -> f64 {
    *d = 1.0 / away_from_zero(1.0 + aa * *d);
    *c = away_from_zero(1.0 + aa / *c);
    *d * *c
}

/// `v`, or a tiny positive number when it is too close to zero to divide by (Numerical Recipes' FPMIN).
fn away_from_zero(v: f64) -> f64 {
    const TINY: f64 = 1e-300;
    if v.abs() < TINY { TINY } else { v }
}
