//! The Population Stability Index.

/// Floor for a bin's share before the logarithm. PSI is undefined for an
/// empty bin (ln 0); a class absent from the baseline but present now is
/// exactly the shift we want to see, so empty bins are floored at 0.0001
/// (0.01 %) instead of being dropped. With this floor one bin going from
/// empty to 10 % contributes about 0.1 · ln(1000) ≈ 0.69, well above the
/// usual 0.2 alert, while bins empty on both sides contribute 0.
pub const PSI_EPSILON: f64 = 1e-4;

/// PSI = Σ (aᵢ − eᵢ) · ln(aᵢ / eᵢ) over bins, where eᵢ and aᵢ are the
/// expected (baseline) and actual shares of bin i. Takes raw counts (any
/// non-negative weights, equal lengths) and normalises them; shares are
/// floored at [`PSI_EPSILON`]. `None` when either side has no mass, since
/// there is no distribution to compare.
pub fn psi(expected: &[f64], actual: &[f64]) -> Option<f64> {
    debug_assert_eq!(expected.len(), actual.len());
    let te: f64 = expected.iter().sum();
    let ta: f64 = actual.iter().sum();
    if te <= 0.0 || ta <= 0.0 || !te.is_finite() || !ta.is_finite() {
        return None;
    }
    let v = expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let e = (e / te).max(PSI_EPSILON);
            let a = (a / ta).max(PSI_EPSILON);
            (a - e) * (a / e).ln()
        })
        .sum();
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn identical_distributions_have_zero_psi() {
        assert_eq!(psi(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), Some(0.0));
    }

    #[test]
    fn hand_computed_values() {
        // e = (0.5, 0.5), a = (0.9, 0.1):
        // (0.9-0.5)·ln(0.9/0.5) + (0.1-0.5)·ln(0.1/0.5)
        // = 0.4·0.5877866649 + (-0.4)·(-1.6094379124) = 0.8788898309
        let v = psi(&[50.0, 50.0], &[90.0, 10.0]).unwrap();
        assert!(close(v, 0.878_889_830_9), "{v}");
        // e = (0.25, 0.25, 0.5), a = (0.2, 0.3, 0.5):
        // -0.05·ln(0.8) + 0.05·ln(1.2) + 0 = 0.0111571775657 + 0.0091160778
        // = 0.0202732554
        let v = psi(&[1.0, 1.0, 2.0], &[2.0, 3.0, 5.0]).unwrap();
        assert!(close(v, 0.020_273_255_4), "{v}");
        // An empty baseline bin uses the epsilon: e = (1, 0) → (1, 1e-4),
        // a = (0.5, 0.5): -0.5·ln(0.5) + (0.5-1e-4)·ln(0.5/1e-4)
        // = 0.3465735903 + 0.4999·8.5171931914 = 4.6043184667
        let v = psi(&[10.0, 0.0], &[5.0, 5.0]).unwrap();
        assert!(close(v, 4.604_318_466_7), "{v}");
        // Bins empty on both sides add nothing.
        let v = psi(&[50.0, 50.0, 0.0], &[90.0, 10.0, 0.0]).unwrap();
        assert!(close(v, 0.878_889_830_9), "{v}");
    }

    #[test]
    fn no_mass_is_no_answer() {
        assert_eq!(psi(&[0.0, 0.0], &[1.0, 2.0]), None);
        assert_eq!(psi(&[1.0, 2.0], &[0.0, 0.0]), None);
    }
}
