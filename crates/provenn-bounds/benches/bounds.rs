//! Interval bounds vs a plain forward pass (batch 256, 784-100-100-10), and CROWN for one box
//! on the same network and on an ACAS Xu-shaped one (5-50×6-5).
#![allow(missing_docs)] // criterion_group! generates undocumented items
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use nalgebra::DMatrix;
use provenn_bounds::{BoundPropagator, CrownBounds, InputBox, IntervalBounds};
use provenn_nn::{Activation, MlpBuilder};

fn bench(c: &mut Criterion) {
    let mnist = MlpBuilder::new(784)
        .hidden(100, Activation::Relu)
        .hidden(100, Activation::Relu)
        .output(10, Activation::Identity)
        .seed(1)
        .build()
        .unwrap();
    let x = DMatrix::from_fn(256, 784, |i, j| ((i * 31 + j * 17) % 255) as f64 / 255.0);
    let boxes: Vec<InputBox> = (0..256)
        .map(|i| {
            let row: Vec<f64> = x.row(i).iter().copied().collect();
            InputBox::linf_ball(&row, 0.01, Some(&InputBox::unit(784))).unwrap()
        })
        .collect();
    c.bench_function("bounds/forward_batch256_784-100-100-10", |b| {
        b.iter(|| mnist.forward_batch(black_box(&x)).unwrap())
    });
    c.bench_function("bounds/ibp_batch256_784-100-100-10", |b| {
        b.iter(|| {
            IntervalBounds
                .bounds_batch(&mnist, black_box(&boxes))
                .unwrap()
        })
    });
    c.bench_function("bounds/crown_one_box_784-100-100-10", |b| {
        b.iter(|| {
            CrownBounds
                .bounds(&mnist, black_box(&boxes[0]), None)
                .unwrap()
        })
    });
    let mut acas = MlpBuilder::new(5).seed(2);
    for _ in 0..6 {
        acas = acas.hidden(50, Activation::Relu);
    }
    let acas = acas.output(5, Activation::Identity).build().unwrap();
    let dom = InputBox::new(
        vec![-0.3, -0.5, -0.5, -0.5, -0.5],
        vec![0.68, 0.5, 0.5, 0.5, 0.5],
    )
    .unwrap();
    c.bench_function("bounds/crown_one_box_acasxu_shape", |b| {
        b.iter(|| CrownBounds.bounds(&acas, black_box(&dom), None).unwrap())
    });
    c.bench_function("bounds/ibp_one_box_acasxu_shape", |b| {
        b.iter(|| IntervalBounds.bounds(&acas, black_box(&dom), None).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
