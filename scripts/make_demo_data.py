"""Write the synthetic LightMedSeg demo dataset (Decathlon layout) to a directory.

Example::

    python scripts/make_demo_data.py --output demo_data --num-cases 24 --seed 0
"""

from __future__ import annotations

import argparse

from lightmedseg_bundle.data import make_demo_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="directory to write imagesTr/, labelsTr/ and dataset.json to")
    parser.add_argument("--num-cases", type=int, default=24, help="number of cases (default: 24)")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed gives the same data (default: 0)"
    )
    args = parser.parse_args()
    dataset_json = make_demo_dataset(args.output, num_cases=args.num_cases, seed=args.seed)
    print(f"wrote {args.num_cases} cases, {dataset_json}")


if __name__ == "__main__":
    main()
