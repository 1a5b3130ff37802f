//! Downscaling while pixels arrive: an integer-factor box filter fed row by row (or, for
//! interlaced PNGs, sample by sample in any order), so a big image is never held at full size.

use image::RgbImage;

/// The factor by which an image of `width` × `height` is shrunk when its short side need only be
/// `min_short_side`: the largest whole factor keeping the short side at least that (the output's
/// short side is then below twice it, as with JPEG's DCT scaling), raised for extremely elongated
/// images so that the output holds at most [`MAX_WORKING_PIXELS`].
pub fn factor_for(width: u32, height: u32, min_short_side: u32) -> u32 {
    let short = width.min(height).max(1);
    let by_side = (short / min_short_side.max(1)).max(1);
    let pixels = width as u64 * height as u64;
    let by_pixels = (pixels as f64 / MAX_WORKING_PIXELS as f64).sqrt().ceil() as u32;
    by_side.max(by_pixels).max(1)
}

/// The most pixels a downscaled working image holds (a 2 k × 2 k square; a 64 MP panorama
/// shrinks to this).
pub const MAX_WORKING_PIXELS: u64 = 4 * 1024 * 1024;

/// Output side for an input side and factor.
pub fn shrunk(side: u32, factor: u32) -> u32 {
    side.div_ceil(factor.max(1))
}

/// Bytes a [`BoxShrink`] holds besides its input rows.
pub fn working_bytes(width: u32, height: u32, factor: u32) -> u64 {
    let out = shrunk(width, factor) as u64 * shrunk(height, factor) as u64;
    if factor <= 1 { out * 3 } else { out * (3 + 12) }
}

/// Averages `factor` × `factor` blocks of RGB8 pixels. Every input pixel must be given exactly
/// once; the order does not matter (Adam7 passes arrive scattered).
pub struct BoxShrink {
    factor: u32,
    width: u32,
    height: u32,
    out_width: u32,
    out_height: u32,
    /// Factor 1: the image itself. Otherwise sums per output channel.
    direct: Option<RgbImage>,
    sums: Vec<u32>,
}

impl BoxShrink {
    pub fn new(width: u32, height: u32, factor: u32) -> BoxShrink {
        let factor = factor.max(1);
        let (out_width, out_height) = (shrunk(width, factor), shrunk(height, factor));
        let out = out_width as usize * out_height as usize;
        BoxShrink {
            factor,
            width,
            height,
            out_width,
            out_height,
            direct: (factor == 1).then(|| RgbImage::new(width, height)),
            sums: if factor == 1 {
                Vec::new()
            } else {
                vec![0; out * 3]
            },
        }
    }

    /// A whole row `y` of RGB8 pixels.
    pub fn row(&mut self, y: u32, rgb: &[u8]) {
        self.samples(y, 0, 1, rgb);
    }

    /// Pixels of row `y` at `x0`, `x0 + step`, … (an Adam7 pass line), as RGB8.
    pub fn samples(&mut self, y: u32, x0: u32, step: u32, rgb: &[u8]) {
        if y >= self.height {
            return;
        }
        let count = (rgb.len() / 3) as u32;
        let count = count.min(self.width.saturating_sub(x0).div_ceil(step.max(1)));
        if let Some(image) = &mut self.direct {
            let row = &mut image.as_mut()[(y as usize * self.width as usize * 3)..]
                [..self.width as usize * 3];
            if step == 1 && x0 == 0 {
                row[..count as usize * 3].copy_from_slice(&rgb[..count as usize * 3]);
            } else {
                for i in 0..count {
                    let x = (x0 + i * step) as usize;
                    row[x * 3..x * 3 + 3].copy_from_slice(&rgb[i as usize * 3..i as usize * 3 + 3]);
                }
            }
            return;
        }
        let out_row = (y / self.factor) as usize * self.out_width as usize * 3;
        for i in 0..count {
            let x = x0 + i * step;
            let cell = out_row + (x / self.factor) as usize * 3;
            let px = &rgb[i as usize * 3..i as usize * 3 + 3];
            self.sums[cell] += px[0] as u32;
            self.sums[cell + 1] += px[1] as u32;
            self.sums[cell + 2] += px[2] as u32;
        }
    }

    /// The shrunk image: each cell the mean of the input pixels it covers (edge cells cover fewer).
    pub fn finish(self) -> RgbImage {
        if let Some(image) = self.direct {
            return image;
        }
        let f = self.factor;
        let mut out = RgbImage::new(self.out_width, self.out_height);
        for (oy, row) in out
            .as_mut()
            .chunks_exact_mut(self.out_width as usize * 3)
            .enumerate()
        {
            let cell_h = (self.height - oy as u32 * f).min(f);
            for (ox, px) in row.chunks_exact_mut(3).enumerate() {
                let cell_w = (self.width - ox as u32 * f).min(f);
                let n = cell_w * cell_h;
                let at = (oy * self.out_width as usize + ox) * 3;
                for (value, sum) in px.iter_mut().zip(&self.sums[at..at + 3]) {
                    *value = ((sum + n / 2) / n) as u8;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_keep_the_short_side_and_bound_the_pixels() {
        assert_eq!(factor_for(4000, 3000, 256), 11);
        assert_eq!(factor_for(300, 200, 256), 1);
        assert_eq!(factor_for(8000, 8000, 256), 31);
        let f = factor_for(65_535, 976, 256);
        assert!(shrunk(65_535, f) as u64 * shrunk(976, f) as u64 <= MAX_WORKING_PIXELS);
    }

    #[test]
    fn box_means_in_any_order_match_the_direct_image() {
        let (w, h) = (37u32, 23u32);
        let pixel = |x: u32, y: u32| {
            [
                (x * 7 % 256) as u8,
                (y * 11 % 256) as u8,
                ((x + y) % 256) as u8,
            ]
        };
        for factor in [1, 2, 3, 8, 40] {
            let mut in_order = BoxShrink::new(w, h, factor);
            for y in 0..h {
                let row: Vec<u8> = (0..w).flat_map(|x| pixel(x, y)).collect();
                in_order.row(y, &row);
            }
            // The same pixels as two interleaved halves, bottom rows first.
            let mut scattered = BoxShrink::new(w, h, factor);
            for y in (0..h).rev() {
                for x0 in [1, 0] {
                    let row: Vec<u8> = (x0..w).step_by(2).flat_map(|x| pixel(x, y)).collect();
                    scattered.samples(y, x0, 2, &row);
                }
            }
            let (a, b) = (in_order.finish(), scattered.finish());
            assert_eq!(a, b, "factor {factor}");
            assert_eq!(a.dimensions(), (shrunk(w, factor), shrunk(h, factor)));
            // The top-left cell is the mean of its block.
            let n = factor.min(w) * factor.min(h);
            let mean: u32 = (0..factor.min(h))
                .flat_map(|y| (0..factor.min(w)).map(move |x| pixel(x, y)[0] as u32))
                .sum::<u32>();
            assert_eq!(a.get_pixel(0, 0)[0] as u32, (mean + n / 2) / n);
        }
    }
}
