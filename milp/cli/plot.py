"""``milp plot``: the picture of a region file (PNG or SVG)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from milp.cli.common import CliError, load_model


EPILOG = (
    "examples:\n"
    '  milp regions examples/un_relu_toy.onnx --box -5:5 --where "y[0] > 0" -o zones.jsonl\n'
    "  milp plot zones.jsonl -o zones.png --samples 10000\n"
    "  milp plot zones.jsonl -o zones.svg --color-by h0 --legend --title \"where y[0] fires\"\n"
    '  milp regions acas.onnx --slice "x0=0,0,0,0.45,-0.45 u=e0 v=e1" --box -0.05:0.05 -o plane.jsonl\n'
    "  milp plot plane.jsonl -o plane.png --color-by y0    (a plane through a 5-input network, drawn in s, t)"
)


def run(args) -> int:
    """``milp plot REGIONFILE -o PICTURE``: draw the regions of a region file (PNG or SVG)."""
    from milp.core.network import Network
    from milp.viz.plot import plot_region_file, save_figure

    if Path(args.output).suffix.lower() not in (".png", ".svg"):
        raise CliError(f"output {args.output!r}: use a .png or .svg file name")

    def load(path: Path) -> Network:
        return load_model(str(path))[0]

    from milp.io.regionfiles import read_region_file

    content = read_region_file(args.regionfile)
    if content.damage:
        print(f"milp: warning: {args.regionfile}: {content.damage}; only the {len(content.regions)} regions before it are drawn "
              f"(milp regions ... -o {args.regionfile} --resume repairs the file)", file=sys.stderr)
    figure = plot_region_file(args.regionfile, args.samples, args.color_by, args.legend, args.title,
                              seed=args.seed, load_model=load, model=args.model, content=content, draw=args.draw)
    save_figure(figure, args.output)
    payload = {"output": args.output, "regions": len(content.regions), "complete": content.complete, "damage": content.damage or None}
    print(json.dumps(payload) if args.json else f"written to {args.output}", file=args.out)
    return 0


def register(command) -> None:
    p = command("plot", "draw the regions of a region file over its 2-D box (PNG or SVG); with --samples, sampled inputs beside them", EPILOG)
    p.add_argument("regionfile", help="a region file written by milp regions -o (.jsonl, .json or .npz)")
    p.add_argument("-o", "--output", required=True, help="the picture: .png or .svg")
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="also draw N uniform samples of the box where the file's conditions hold, on the left (needs the model named in the file)")
    p.add_argument("--color-by", default="pattern", metavar="WHAT",
                   help="pattern (a colour per region, default), h<L> (a colour per sub-pattern of ReLU layer L, e.g. h0), y / y<k> (shade by output k) "
                        "or argmax (a colour per predicted class: the exact decision regions, regions cut where the class changes)")
    p.add_argument("--draw", default="regions", metavar="WHAT",
                   help="regions (default) or zones: the convex zones of milp regions --merge with their outlines "
                        "(merged here when the file has none), e.g. milp plot zones.jsonl -o zones.png --draw zones")
    p.add_argument("--legend", action="store_true", help="list the colours' patterns beside the picture")
    p.add_argument("--title", default=None, help="title of the regions panel (default: the count and the conditions)")
    p.add_argument("--model", default=None, metavar="FILE", help="the model file, when it is not where the region file's header says")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples (default 0)")
    p.add_argument("--json", action="store_true", help='print one JSON object: {"output", "regions", "complete", "damage"}')
    p.set_defaults(run=run)
