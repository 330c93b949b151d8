//! Constant-velocity Kalman filter over `(cx, cy, a, h)` boxes, as in the
//! ByteTrack / DeepSORT reference, made time-aware: prediction takes the number
//! of frames elapsed, so a tracker that sees only every n-th frame predicts
//! across the gap instead of assuming one frame passed.
//!
//! The state is `(cx, cy, a, h, vx, vy, va, vh)` with `a = w / h`. Noise is
//! proportional to the box height, so the filter behaves the same for near
//! (large) and far (small) objects. Everything is fixed-size arrays in `f64`:
//! no allocation, and no numerical trouble on long streams.

// Indexed loops read like the matrix formulas they implement.
#![allow(clippy::needless_range_loop)]

/// Position noise per unit of box height (reference `_std_weight_position`).
const STD_WEIGHT_POSITION: f64 = 1.0 / 20.0;
/// Velocity noise per unit of box height (reference `_std_weight_velocity`).
const STD_WEIGHT_VELOCITY: f64 = 1.0 / 160.0;
/// Noise scales use at least this height so a box collapsing under prediction
/// never makes a covariance singular.
const MIN_HEIGHT: f64 = 1e-3;

/// A measurement or projected state: centre x, centre y, aspect (w / h), height.
pub type Xyah = [f64; 4];

type Mat8 = [[f64; 8]; 8];
type Mat4 = [[f64; 4]; 4];

/// One track's Gaussian state estimate.
///
/// Public so the tracker's motion model can be tested and reused on its own;
/// the tracker owns one per track.
#[derive(Debug, Clone, PartialEq)]
pub struct KalmanFilter {
    /// `(cx, cy, a, h, vx, vy, va, vh)`; velocities are per frame.
    pub mean: [f64; 8],
    /// Uncertainty of `mean`; it grows with prediction and shrinks with each
    /// update, which is what weighs new detections against the motion model.
    pub covariance: Mat8,
}

impl KalmanFilter {
    /// Starts a filter at a first measurement with zero velocity and the
    /// reference's wide initial uncertainty (2× position, 10× velocity noise),
    /// so the first few updates move the estimate quickly.
    pub fn initiate(z: Xyah) -> Self {
        let mut mean = [0.0; 8];
        mean[..4].copy_from_slice(&z);
        let h = z[3].abs().max(MIN_HEIGHT);
        let p = 2.0 * STD_WEIGHT_POSITION * h;
        let v = 10.0 * STD_WEIGHT_VELOCITY * h;
        let std = [p, p, 1e-2, p, v, v, 1e-5, v];
        let mut covariance = [[0.0; 8]; 8];
        for (i, s) in std.iter().enumerate() {
            covariance[i][i] = s * s;
        }
        Self { mean, covariance }
    }

    /// Advances the state `dt` frames (`dt >= 0`; fractions allowed).
    ///
    /// The transition is `F(dt) = [[I, dt·I], [0, I]]`, and the process noise
    /// is what `dt` successive one-frame reference predictions would add,
    /// `Σ_{k<n} F(k) Q F(k)ᵀ` in closed form, so `dt = 1` is exactly the
    /// reference and `dt = 3` matches three reference steps (up to the height
    /// the noise is scaled by, taken once at the start).
    pub fn predict(&mut self, dt: f64) {
        let h = self.mean[3].abs().max(MIN_HEIGHT);
        let sp = STD_WEIGHT_POSITION * h;
        let sv = STD_WEIGHT_VELOCITY * h;
        let qp = [sp * sp, sp * sp, 1e-4, sp * sp];
        let qv = [sv * sv, sv * sv, 1e-10, sv * sv];

        for i in 0..4 {
            self.mean[i] += dt * self.mean[i + 4];
        }

        // P = [[A, B], [Bᵀ, C]] → F P Fᵀ = [[A + dt(B + Bᵀ) + dt²C, B + dt·C], [.., C]].
        let p = &mut self.covariance;
        let mut a_new: Mat4 = [[0.0; 4]; 4];
        let mut b_new: Mat4 = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                let a = p[i][j];
                let b = p[i][j + 4];
                let bt = p[i + 4][j];
                let c = p[i + 4][j + 4];
                a_new[i][j] = a + dt * (b + bt) + dt * dt * c;
                b_new[i][j] = b + dt * c;
            }
        }
        for i in 0..4 {
            for j in 0..4 {
                p[i][j] = a_new[i][j];
                p[i][j + 4] = b_new[i][j];
                p[i + 4][j] = b_new[j][i];
            }
        }

        let n = dt;
        let sum_k = n * (n - 1.0) / 2.0;
        let sum_k2 = n * (n - 1.0) * (2.0 * n - 1.0) / 6.0;
        for i in 0..4 {
            p[i][i] += n * qp[i] + sum_k2 * qv[i];
            p[i][i + 4] += sum_k * qv[i];
            p[i + 4][i] += sum_k * qv[i];
            p[i + 4][i + 4] += n * qv[i];
        }
    }

    /// Corrects the state with a measured box. Returns false (leaving the
    /// state unchanged) if the innovation covariance is not positive definite,
    /// which only degenerate input can cause; the caller then restarts the
    /// filter at the measurement rather than carrying a broken estimate.
    #[must_use]
    pub fn update(&mut self, z: Xyah) -> bool {
        let h = self.mean[3].abs().max(MIN_HEIGHT);
        let sp = STD_WEIGHT_POSITION * h;
        let r = [sp * sp, sp * sp, 1e-1 * 1e-1, sp * sp];

        let p = &self.covariance;
        let mut s: Mat4 = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                s[i][j] = p[i][j];
            }
            s[i][i] += r[i];
        }
        let Some(s_inv) = spd_inverse(&s) else {
            return false;
        };

        // K = P Hᵀ S⁻¹; P Hᵀ is the first four columns of P.
        let mut k = [[0.0; 4]; 8];
        for (i, row) in k.iter_mut().enumerate() {
            for (j, kij) in row.iter_mut().enumerate() {
                *kij = (0..4).map(|m| p[i][m] * s_inv[m][j]).sum();
            }
        }

        let y: [f64; 4] = std::array::from_fn(|i| z[i] - self.mean[i]);
        let mut new_p = *p;
        for i in 0..8 {
            self.mean[i] += (0..4).map(|j| k[i][j] * y[j]).sum::<f64>();
            // P − K S Kᵀ = P − K (P Hᵀ)ᵀ.
            for j in 0..8 {
                new_p[i][j] -= (0..4).map(|m| k[i][m] * p[j][m]).sum::<f64>();
            }
        }
        for i in 0..8 {
            for j in (i + 1)..8 {
                let avg = 0.5 * (new_p[i][j] + new_p[j][i]);
                new_p[i][j] = avg;
                new_p[j][i] = avg;
            }
        }
        if new_p
            .iter()
            .enumerate()
            .any(|(i, row)| row[i].is_nan() || row[i] < 0.0)
        {
            return false;
        }
        self.covariance = new_p;
        true
    }

    /// The box part of the mean `dt` frames ahead, without touching the state;
    /// what the pipeline draws on frames it did not run the detector on.
    pub fn xyah_ahead(&self, dt: f64) -> Xyah {
        std::array::from_fn(|i| self.mean[i] + dt * self.mean[i + 4])
    }

    /// The current box estimate.
    pub fn xyah(&self) -> Xyah {
        std::array::from_fn(|i| self.mean[i])
    }
}

/// Inverse of a symmetric positive definite 4×4 matrix by Cholesky; `None` if
/// it is not positive definite (or not finite).
fn spd_inverse(s: &Mat4) -> Option<Mat4> {
    let mut l: Mat4 = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                let d = s[i][i] - sum;
                if !d.is_finite() || d <= 0.0 {
                    return None;
                }
                l[i][i] = d.sqrt();
            } else {
                l[i][j] = (s[i][j] - sum) / l[j][j];
            }
        }
    }
    // Solve L Lᵀ X = I column by column.
    let mut inv: Mat4 = [[0.0; 4]; 4];
    for c in 0..4 {
        let mut y = [0.0; 4];
        for i in 0..4 {
            let e = if i == c { 1.0 } else { 0.0 };
            let sum: f64 = (0..i).map(|k| l[i][k] * y[k]).sum();
            y[i] = (e - sum) / l[i][i];
        }
        let mut x = [0.0; 4];
        for i in (0..4).rev() {
            let sum: f64 = ((i + 1)..4).map(|k| l[k][i] * x[k]).sum();
            x[i] = (y[i] - sum) / l[i][i];
        }
        for i in 0..4 {
            inv[i][c] = x[i];
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn initiate_matches_reference_noise() {
        let kf = KalmanFilter::initiate([10.0, 20.0, 0.5, 100.0]);
        assert_eq!(kf.mean, [10.0, 20.0, 0.5, 100.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(approx(kf.covariance[0][0], 100.0, 1e-12)); // (2 · 100 / 20)²
        assert!(approx(kf.covariance[4][4], 39.0625, 1e-12)); // (10 · 100 / 160)²
        assert!(approx(kf.covariance[2][2], 1e-4, 1e-12));
    }

    #[test]
    fn one_step_predict_matches_reference_formula() {
        let mut kf = KalmanFilter::initiate([0.0, 0.0, 0.5, 100.0]);
        kf.mean[4] = 2.0;
        let p0 = kf.covariance;
        kf.predict(1.0);
        assert_eq!(kf.mean[0], 2.0);
        // A' = A + C + Q_pos for a diagonal start.
        assert!(approx(
            kf.covariance[0][0],
            p0[0][0] + p0[4][4] + 25.0,
            1e-12
        ));
        assert!(approx(kf.covariance[0][4], p0[4][4], 1e-12));
        assert!(approx(
            kf.covariance[4][4],
            p0[4][4] + (100.0f64 / 160.0).powi(2),
            1e-12
        ));
    }

    #[test]
    fn predicting_three_frames_at_once_equals_three_single_steps() {
        let mut a = KalmanFilter::initiate([50.0, 60.0, 0.4, 80.0]);
        a.mean[4] = 3.0;
        a.mean[5] = -1.0;
        let mut b = a.clone();
        a.predict(3.0);
        // Keep the noise scale identical: the closed form uses the starting height.
        for _ in 0..3 {
            b.predict(1.0);
        }
        for i in 0..8 {
            assert!(approx(a.mean[i], b.mean[i], 1e-12));
            for j in 0..8 {
                assert!(
                    approx(a.covariance[i][j], b.covariance[i][j], 1e-9),
                    "{i},{j}: {} vs {}",
                    a.covariance[i][j],
                    b.covariance[i][j]
                );
            }
        }
    }

    #[test]
    fn update_pulls_towards_measurement_and_learns_velocity() {
        let mut kf = KalmanFilter::initiate([0.0, 0.0, 0.5, 100.0]);
        for t in 1..=20 {
            kf.predict(1.0);
            assert!(kf.update([4.0 * t as f64, 0.0, 0.5, 100.0]));
        }
        assert!((kf.mean[0] - 80.0).abs() < 2.0, "{:?}", kf.mean);
        assert!((kf.mean[4] - 4.0).abs() < 0.5, "{:?}", kf.mean);
        assert_eq!(kf.xyah_ahead(2.0)[0], kf.mean[0] + 2.0 * kf.mean[4]);
    }

    #[test]
    fn spd_inverse_inverts_and_rejects_indefinite() {
        let s = [
            [4.0, 1.0, 0.0, 0.5],
            [1.0, 3.0, 0.2, 0.0],
            [0.0, 0.2, 2.0, 0.1],
            [0.5, 0.0, 0.1, 1.0],
        ];
        let inv = spd_inverse(&s).unwrap();
        for i in 0..4 {
            for j in 0..4 {
                let v: f64 = (0..4).map(|k| s[i][k] * inv[k][j]).sum();
                assert!(approx(v, if i == j { 1.0 } else { 0.0 }, 1e-12));
            }
        }
        let mut bad = s;
        bad[2][2] = -1.0;
        assert!(spd_inverse(&bad).is_none());
    }
}
