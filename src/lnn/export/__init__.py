"""Export a trained policy to the browser: ONNX streaming step, fp16/int8, parity, τ plots, web page.

    source.py    which checkpoint (a run, a sweep's best job, a file), its config, the model rebuilt
    episodes.py  16-step streams of recorded frames; PyTorch and onnxruntime run over them
    onnx_step.py the step as an ONNX graph (state in/out), fp16 and int8 variants, solver choice
    parity.py    PyTorch vs onnxruntime over the streams; export fails when a figure is out of bounds
    lfm2.py      LFM2-Liquid: vision, decoder step and heads graphs, their parity with PyTorch
    bundle.py    the web page (web/ sources + onnxruntime-web from npm + recorded episodes)
    pipeline.py  all of it into one export directory, atomically
    serve.py     a local HTTP server for the page: `python -m lnn.export.serve <export dir>`

Imports are lazy (onnx and onnxruntime load only when exporting). The τ plots are lnn.plots (training
draws the same ones).
"""
