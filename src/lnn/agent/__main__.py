"""python -m lnn.agent ckpt=<run dir | .ckpt | ONNX dir> task=click-button episodes=50   (see lnn.agent.cli)"""

from lnn.agent.cli import main

main()
