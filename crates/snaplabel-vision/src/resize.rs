//! SIMD resizing (fast_image_resize) of a region of an RGB image.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

/// A rectangle in pixels of the source image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

impl Region {
    pub fn whole(image: &RgbImage) -> Self {
        Region {
            left: 0.0,
            top: 0.0,
            width: image.width() as f64,
            height: image.height() as f64,
        }
    }
}

/// Resizes `region` of `image` to `out_w` × `out_h` RGB8 pixels (bilinear, antialiased).
pub fn resize_region(image: &RgbImage, region: Region, out_w: u32, out_h: u32) -> Vec<u8> {
    let src = ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        PixelType::U8x3,
    )
    .expect("RgbImage buffers match their size");
    let mut dst = Image::new(out_w, out_h, PixelType::U8x3);
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
        .crop(region.left, region.top, region.width, region.height);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .expect("same pixel types and a non-empty region");
    dst.into_vec()
}

/// Resizes the whole image so that it fits in `max_side` × `max_side`, keeping its aspect.
pub fn fit(image: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let scale = (max_side as f64 / w.max(h) as f64).min(1.0);
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    if (nw, nh) == (w, h) {
        return image.clone();
    }
    RgbImage::from_raw(nw, nh, resize_region(image, Region::whole(image), nw, nh))
        .expect("sizes match")
}
