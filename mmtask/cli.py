"""The `mmtask` command: train, evaluate, predict, export and serve from the shell.

User mistakes (a missing path, a bad spec key, a bad data file) print one
line on stderr and exit with status 2; anything else is a bug and keeps its
traceback.

TensorFlow is imported only once a command runs, so `mmtask --help` answers
at once, and its start-up log lines are hidden unless `--tf-logs` (or
`MMTASK_TF_LOGS=1`) asks for them.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mmtask.errors import MmtaskError

EXIT_USER_ERROR = 2
TF_LOGS_ENV = "MMTASK_TF_LOGS"


def _add_data_arguments(parser: argparse.ArgumentParser, splits: bool) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        required=True,
        help="an MVSA-layout folder, a folder of ID.txt + ID.jpg pairs, or a .csv/.jsonl manifest",
    )
    if splits:
        group.add_argument("--split", default=None, help="MVSA split name or id file")
    group.add_argument("--text-column", help="manifest column holding the text")
    group.add_argument("--text-path-column", help="manifest column holding a text file path")
    group.add_argument("--image-column", default="image", help="manifest image-path column")
    group.add_argument("--label-columns", nargs="*", default=[], help="manifest label columns")
    group.add_argument(
        "--label-types",
        nargs="*",
        default=[],
        metavar="COLUMN=TYPE",
        help="label type of manifest columns (classification, binary, multilabel, regression); "
        "columns left out are inferred from their cells",
    )
    group.add_argument("--id-column", help="manifest id column (default: the row number)")
    group.add_argument(
        "--allow-missing",
        nargs="*",
        choices=["text", "image"],
        default=[],
        help="keep posts without a text or an image (predicted from the other modality)",
    )
    group.add_argument(
        "--on-error",
        choices=["raise", "skip"],
        default="raise",
        help="stop at the first bad post (default) or skip and report bad posts",
    )


def _read(
    args: argparse.Namespace,
    split: str | None = None,
    labelled: bool = True,
    label_names: dict | None = None,
    data: str | None = None,
    label_types: dict | None = None,
    max_image_pixels: int | None = None,
):
    from mmtask.data import read_posts
    from mmtask.data.image_header import MAX_IMAGE_PIXELS

    posts = read_posts(
        data or args.data,
        split=split,
        on_error=args.on_error,
        text_column=args.text_column,
        text_path_column=args.text_path_column,
        image_column=args.image_column,
        label_columns=args.label_columns,
        id_column=args.id_column,
        label_names=label_names,
        label_types={**_label_types(args.label_types), **(label_types or {})},
        labelled=labelled,
        allow_missing=args.allow_missing,
        max_image_pixels=max_image_pixels or MAX_IMAGE_PIXELS,
    )
    print(posts.report.summary(), file=sys.stderr)
    if not len(posts):
        raise MmtaskError(f"no usable posts: {posts.report.summary()}")
    return posts


def _label_types(pairs: Sequence[str]) -> dict[str, str]:
    """`--label-types col=regression ...` as a dict."""
    types = {}
    for pair in pairs:
        column, sep, label_type = pair.partition("=")
        if not sep or not column or not label_type:
            raise MmtaskError(
                f"Invalid value for `--label-types`: expected COLUMN=TYPE pairs. Received: {pair!r}"
            )
        types[column] = label_type
    return types


def _train(args: argparse.Namespace) -> None:
    from mmtask.atomic_folders import folder_lock
    from mmtask.run_folder import backup_folder

    out = Path(args.out)
    with folder_lock(out):
        # Said before training, not after an hour of it.
        if out.exists() and not out.is_dir():
            raise MmtaskError(f"--out {out} is a file, not a run folder.")
        if out.exists() and any(out.iterdir()) and not args.overwrite:
            raise MmtaskError(
                f"Run folder {out} already holds files: pass --overwrite to replace it."
            )
        backup = backup_folder(out)
        if backup.exists() and not args.resume:
            raise MmtaskError(
                f"{backup} holds the backup of an interrupted run into {out}: pass --resume "
                "to continue it, or remove that folder to start afresh."
            )
        _train_locked(args, backup if args.resume else None)


def _train_locked(args: argparse.Namespace, backup: Path | None) -> None:
    from mmtask.spec import RunSpec
    from mmtask.training import save_run, train

    spec = RunSpec.from_file(args.spec) if args.spec else RunSpec()
    keys = ("epochs", "batch_size", "learning_rate", "seed", "monitor", "patience")
    for key in (*keys, "mixed_precision"):
        if getattr(args, key) is not None:
            setattr(spec.training, key, getattr(args, key))
    if args.no_feature_cache:
        spec.training.cache_frozen_encoders = False
    if args.image_size is not None:
        spec.model.image_size = args.image_size
    train_posts = _read(args, split=args.train_split, max_image_pixels=_pixel_limit(args))
    val_posts = None
    if args.val_fraction is not None:
        if args.val_split or args.val_data:
            raise MmtaskError("Give --val-fraction or --val-split / --val-data, not both.")
        train_posts, val_posts = train_posts.split(args.val_fraction, seed=spec.training.seed)
    if args.val_split or args.val_data:
        val_posts = _read(
            args,
            split=args.val_split,
            label_names=train_posts.label_names,
            data=args.val_data,
            label_types=train_posts.label_types,
            max_image_pixels=_pixel_limit(args),
        )
    result = train(
        spec,
        train_posts,
        val_posts,
        verbose=args.verbose,
        contributions=True,
        cache_dir=args.cache_dir,
        safe_mode=not args.trust_saved_model,
        backup_dir=backup,
    )
    paths = save_run(result, spec, args.out, overwrite=args.overwrite)
    if backup is not None:
        shutil.rmtree(backup)  # Only once the run is saved: a kill before leaves it resumable.
    if result.selection is not None and result.selection["best_epoch"] is not None:
        kept = result.selection
        print(
            f"kept epoch {kept['best_epoch'] + 1} of {kept['epochs_run']} "
            f"({kept['monitor']} {kept['best_value']:.4f})"
        )
    if result.report is not None:
        from mmtask.plots import save_run_plots
        from mmtask.report import write_html_report

        print(result.report.table())
        plots = save_run_plots(args.out)
        paths.update(plots, html=write_html_report(args.out, plots))
    for name, path in paths.items():
        print(f"{name}: {path}")


def _tune(args: argparse.Namespace) -> None:
    from mmtask.spec import RunSpec
    from mmtask.tuning import SearchSpace, tune

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise MmtaskError(f"{out} exists: pass --overwrite to replace it.")
    spec = RunSpec.from_file(args.spec)
    space = SearchSpace.from_file(args.search)
    space.check(spec)  # before reading the data: a typo in a path fails at once
    posts = _read(args, split=args.train_split)
    result = tune(
        spec,
        posts,
        space,
        directory=args.directory or out.with_suffix(".search"),
        folds=args.folds,
        max_trials=args.max_trials,
        metric=args.metric,
        oracle=args.oracle,
        seed=args.seed,
        stratify=args.stratify,
        restart=args.restart,
        cache_dir=args.cache_dir,
        safe_mode=not args.trust_saved_model,
    )
    paths = result.save(out, command=shlex.join(["mmtask", *args.argv]))
    print(
        f"best: trial {result.best_trial}, {result.metric} {result.best_score:.4f} "
        f"± {result.best_std:.4f} over {result.folds} folds"
    )
    for name, path in paths.items():
        print(f"{name}: {path}")


def _load_predictor(args: argparse.Namespace):
    """The model of `--model`, averaged over the image views of `--tta` when given."""
    from mmtask.training import load_model

    model = load_model(args.model, safe_mode=not args.trust_saved_model)
    if not args.tta:
        return model
    from mmtask.models import MultiTaskEnsemble

    members = model.members if isinstance(model, MultiTaskEnsemble) else [model]
    try:
        return MultiTaskEnsemble(members, image_views=args.tta)
    except ValueError as error:
        raise MmtaskError(f"--tta: {error}") from None


def _ensemble(args: argparse.Namespace) -> None:
    from mmtask.models import MultiTaskEnsemble
    from mmtask.training import load_model

    members = [
        load_model(path, safe_mode=not args.trust_saved_model, compile=False)
        for path in args.models
    ]
    try:
        ensemble = MultiTaskEnsemble(members, image_views=args.tta or ["original"])
    except ValueError as error:
        raise MmtaskError(str(error)) from None
    out = Path(args.out)
    if out.suffix != ".keras":
        raise MmtaskError(f"--out must name a .keras file. Received: {out}")
    if out.exists() and not args.overwrite:
        raise MmtaskError(f"{out} exists: pass --overwrite to replace it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    ensemble.save(out)
    print(f"ensemble of {len(members)} models ({', '.join(ensemble.image_views)}): {out}")


def _evaluate(args: argparse.Namespace) -> None:
    from mmtask.data import make_dataset
    from mmtask.evaluation import evaluate_model

    model = _load_predictor(args)
    posts = _read(
        args,
        split=args.split,
        label_names=model.label_names,
        label_types=model.label_types,
        max_image_pixels=_pixel_limit(args),
    )
    data = make_dataset(
        posts, model=model, batch_size=args.batch_size, max_image_pixels=_pixel_limit(args)
    )
    report = evaluate_model(model, data, verbose=args.verbose)
    print(report.table())
    if args.out:
        report.save(args.out)
        print(f"report: {args.out}")


def _predict(args: argparse.Namespace) -> None:
    from mmtask.data import features_only, make_dataset

    model = _load_predictor(args)
    posts = _read(args, split=args.split, labelled=False, max_image_pixels=_pixel_limit(args))
    dataset = make_dataset(
        posts, model=model, batch_size=args.batch_size, max_image_pixels=_pixel_limit(args)
    )
    data = features_only(dataset)
    outputs = model.predict(data, verbose=args.verbose)
    columns = {"id": posts.ids}
    for task in model.tasks:
        head = model.heads[task]
        columns.update(head.predict_columns(task, outputs[task], model.label_names[task]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))
    skipped = f", {posts.report.num_skipped} skipped" if posts.report.num_skipped else ""
    print(f"predictions: {out} ({len(posts)} posts{skipped})")


def _pretrain(args: argparse.Namespace) -> None:
    from mmtask.data import read_manifest
    from mmtask.spec import RunSpec
    from mmtask.transfer import pretrain_text_encoder, save_encoder

    spec = RunSpec.from_file(args.spec) if args.spec else RunSpec()
    if spec.model.text_encoder is None:
        raise MmtaskError("The spec's model has no text encoder to pre-train.")
    posts = read_manifest(
        args.data,
        image_column=None,
        text_column=args.text_column,
        label_columns=[args.label_column],
        on_error=args.on_error,
    )
    print(posts.report.summary(), file=sys.stderr)
    result = pretrain_text_encoder(
        posts.texts,
        posts.labels[args.label_column],
        len(posts.label_names[args.label_column]),
        spec.model.text_encoder,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        optimizer=spec.training.optimizer,
        seed=args.seed,
    )
    path = save_encoder(result.encoder, args.out, "text")
    if result.validation_accuracy is not None:
        print(f"held-out accuracy on {args.label_column}: {result.validation_accuracy:.4f}")
    print(f"text_encoder: {path}")
    print(f"use it with: text_encoder: {{name: saved, options: {{path: {path}}}}}")


def _export(args: argparse.Namespace) -> None:
    from mmtask.export import export_saved_model

    model = _load_predictor(args)
    path = export_saved_model(
        model,
        args.out,
        overwrite=args.overwrite,
        version=args.version,
        max_image_pixels=args.max_image_pixels,
    )
    print(f"saved_model: {path}")


def _serve(args: argparse.Namespace) -> None:
    from mmtask.serving import ModelServer, open_model

    model = open_model(
        args.model,
        name=args.name,
        max_image_pixels=args.max_image_pixels,
        trust_saved_model=args.trust_saved_model,
    )
    try:
        server = ModelServer(
            model,
            (args.host, args.port),
            max_request_bytes=args.max_request_bytes,
            max_batch_size=args.max_batch_size,
            max_concurrent_calls=args.max_concurrent_calls,
            log_requests=args.log_requests,
        )
    except OSError as error:
        model.close()
        raise MmtaskError(f"Cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    print(f"serving {model.name} version {model.version} at {server.url} (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
        model.close()


def _retrieve(args: argparse.Namespace) -> None:
    from mmtask.retrieval import Retriever, recall_at_k
    from mmtask.training import load_model

    model = load_model(args.model, safe_mode=not args.trust_saved_model)
    posts = _read(args, split=args.split, labelled=False)
    retriever = Retriever(model, posts, batch_size=args.batch_size)
    recall = recall_at_k(retriever.embeddings["text"], retriever.embeddings["image"], args.ks)
    print(f"{'direction':<15}" + "".join(f"{f'R@{k}':>8}" for k in args.ks))
    for direction, values in recall.items():
        print(f"{direction:<15}" + "".join(f"{values[k]:>8.4f}" for k in args.ks))
    for query in args.query or []:
        matches = retriever.images_for_texts([query], k=max(args.ks))[0]
        shown = ", ".join(f"{m.id} ({m.score:.3f})" for m in matches)
        print(f"images for {query!r}: {shown}")


def _report(args: argparse.Namespace) -> None:
    from mmtask.plots import save_run_plots
    from mmtask.report import write_html_report

    plots = save_run_plots(args.run_dir)
    page = write_html_report(args.run_dir, plots)
    for name, path in {**plots, "html": page}.items():
        print(f"{name}: {path}")


def _add_tta_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tta",
        nargs="+",
        metavar="VIEW",
        help="test-time augmentation: average the predictions over these image views "
        "(original, flip, crop, flip_crop), e.g. --tta original flip",
    )


def _pixel_limit(args: argparse.Namespace) -> int:
    """`--max-image-pixels`, or the readers' default limit."""
    from mmtask.data.image_header import MAX_IMAGE_PIXELS

    return args.max_image_pixels or MAX_IMAGE_PIXELS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmtask", description="Multi-task text + image models on Keras 3.", allow_abbrev=False
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a joint model and save a run folder")
    _add_data_arguments(train, splits=False)
    train.add_argument("--spec", help="a .yaml or .json run spec (model: and training: keys)")
    train.add_argument("--train-split", default=None, help="MVSA split for training")
    train.add_argument("--val-split", default=None, help="MVSA split for validation")
    train.add_argument("--val-data", default=None, help="validation data (default: --data)")
    train.add_argument(
        "--val-fraction",
        type=float,
        help="hold out this random share of --data (seeded by the spec's seed) for validation",
    )
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--image-size", type=int)
    train.add_argument(
        "--monitor",
        help="validation figure that selects the epoch kept (default: the spec's, val_loss)",
    )
    train.add_argument(
        "--patience", type=int, help="stop after this many epochs without a better --monitor"
    )
    train.add_argument(
        "--mixed-precision",
        choices=["none", "bfloat16", "float16"],
        help="compute in bfloat16 or float16, weights in float32 (default: the spec's, none); "
        "float16 scales the loss, which a fine-tuning schedule does not support",
    )
    train.add_argument(
        "--cache-dir",
        help="folder for frozen encoders' cached outputs (default: $MMTASK_CACHE_DIR or "
        "~/.cache/mmtask/features)",
    )
    train.add_argument(
        "--no-feature-cache",
        action="store_true",
        help="run frozen encoders in every step instead of once, from a cache",
    )
    train.add_argument("--out", required=True, help="run folder to write")
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run folder that already holds files (all of them)",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="back the run up beside --out after every epoch, and continue a killed run "
        "from its backup (run the same command again): it ends as if never stopped",
    )
    train.set_defaults(run=_train)

    tune = commands.add_parser(
        "tune",
        help="search a recipe's fields (KerasTuner), scored by k-fold cross-validation; "
        "write the best as a new recipe",
    )
    _add_data_arguments(tune, splits=False)
    tune.add_argument("--spec", required=True, help="the recipe searched around (.yaml/.json)")
    tune.add_argument(
        "--search",
        required=True,
        help="a .yaml search space: run-spec paths to distributions (docs/tuning.md)",
    )
    tune.add_argument("--train-split", default=None, help="MVSA split split into the folds")
    tune.add_argument("--folds", type=int, default=5, help="folds per trial (default 5)")
    tune.add_argument("--max-trials", type=int, default=10, help="trials in all (default 10)")
    tune.add_argument(
        "--metric",
        help="figure scored on each validation fold: a logged one at the kept epoch "
        "(val_loss) or TASK/FIGURE of the report (post_sentiment/weighted_f1); default: "
        "the recipe's training.monitor",
    )
    tune.add_argument(
        "--oracle",
        choices=["random", "bayesian"],
        default="random",
        help="KerasTuner's random search (default) or Bayesian optimisation (needs scikit-learn)",
    )
    tune.add_argument(
        "--stratify", metavar="TASK", help="spread this task's classes evenly over the folds"
    )
    tune.add_argument("--seed", type=int, default=0, help="seeds the folds and the oracle")
    tune.add_argument(
        "--directory",
        help="the search's folder, resumed if it holds the same search (default: --out "
        "with the suffix .search)",
    )
    tune.add_argument(
        "--restart", action="store_true", help="discard the trials in --directory first"
    )
    tune.add_argument(
        "--cache-dir",
        help="folder for frozen encoders' cached outputs, shared by all folds and trials",
    )
    tune.add_argument(
        "--out", required=True, help="the best recipe to write (.yaml; trials: .trials.csv beside)"
    )
    tune.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    tune.set_defaults(run=_tune)

    evaluate = commands.add_parser("evaluate", help="report per-task metrics of a model")
    evaluate.add_argument("--model", required=True, help="a .keras file or a run folder")
    _add_data_arguments(evaluate, splits=True)
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--out", help="write the report as JSON here")
    _add_tta_argument(evaluate)
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser("predict", help="write per-task labels and probabilities")
    predict.add_argument("--model", required=True, help="a .keras file or a run folder")
    _add_data_arguments(predict, splits=True)
    predict.add_argument("--batch-size", type=int, default=64)
    predict.add_argument("--out", required=True, help="CSV file to write")
    _add_tta_argument(predict)
    predict.set_defaults(run=_predict)

    pretrain = commands.add_parser(
        "pretrain", help="pre-train the text encoder on a text-only labelled CSV/JSONL"
    )
    pretrain.add_argument("--data", required=True, help="a .csv/.jsonl of texts and labels")
    pretrain.add_argument("--text-column", default="text")
    pretrain.add_argument("--label-column", required=True)
    pretrain.add_argument(
        "--spec",
        help="a run spec whose model.text_encoder is pre-trained, with its training.optimizer",
    )
    pretrain.add_argument("--epochs", type=int, default=3)
    pretrain.add_argument("--batch-size", type=int, default=64)
    pretrain.add_argument("--learning-rate", type=float, default=1e-3)
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    pretrain.add_argument("--out", required=True, help="the encoder file to write (.keras)")
    pretrain.set_defaults(run=_pretrain)

    export = commands.add_parser("export", help="export a SavedModel serving raw text + images")
    export.add_argument("--model", required=True, help="a .keras file or a run folder")
    export.add_argument("--out", required=True, help="SavedModel folder to create")
    export.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    export.add_argument(
        "--version",
        type=_positive_int,
        help="write TF Serving's versioned layout, OUT/VERSION/ (other versions are kept)",
    )
    _add_tta_argument(export)
    export.set_defaults(run=_export)

    serve = commands.add_parser(
        "serve", help="answer TF Serving's REST predict API over HTTP for a model or an export"
    )
    serve.add_argument(
        "model",
        help="an export folder (or a TF Serving folder of numbered versions), a .keras file "
        "or a run folder",
    )
    serve.add_argument("--port", type=int, default=8501, help="port (default 8501, TF Serving's)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0: all)"
    )
    serve.add_argument("--name", help="model name in the URLs (default: the file or folder name)")
    serve.add_argument(
        "--max-request-bytes",
        type=_positive_int,
        default=32 << 20,
        help="larger request bodies get a 413 (default 32 MiB)",
    )
    serve.add_argument(
        "--max-batch-size",
        type=_positive_int,
        default=256,
        help="requests with more examples get a 413 (default 256)",
    )
    serve.add_argument(
        "--max-concurrent-calls",
        type=_positive_int,
        default=4,
        help="model calls run at once; other requests wait (default 4)",
    )
    serve.add_argument("--log-requests", action="store_true", help="log every request on stderr")
    serve.set_defaults(run=_serve)
    for command in (export, serve):
        command.add_argument(
            "--max-image-pixels",
            type=_positive_int,
            default=None if command is serve else 50_000_000,
            help="images declaring more decoded pixels are answered without their image "
            "(image_status too_large); default 50 megapixels"
            + ("; an export keeps the limit it was exported with" if command is serve else ""),
        )

    ensemble = commands.add_parser(
        "ensemble", help="average several trained models (e.g. seeds of a recipe) into one"
    )
    ensemble.add_argument(
        "--models", nargs="+", required=True, help=".keras files or run folders to average"
    )
    ensemble.add_argument("--out", required=True, help="the .keras file to write")
    ensemble.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _add_tta_argument(ensemble)
    ensemble.set_defaults(run=_ensemble)

    report = commands.add_parser("report", help="write plots and an HTML page for a run folder")
    report.add_argument("run_dir", help="a run folder written by `mmtask train`")
    report.set_defaults(run=_report)

    retrieve = commands.add_parser(
        "retrieve", help="text <-> image recall@k of an aligned model, and text queries"
    )
    retrieve.add_argument("--model", required=True, help="a .keras file or a run folder")
    _add_data_arguments(retrieve, splits=True)
    retrieve.add_argument("--ks", type=int, nargs="+", default=[1, 5, 10], help="k of recall@k")
    retrieve.add_argument("--query", nargs="*", help="texts to find images for")
    retrieve.add_argument("--batch-size", type=int, default=64)
    retrieve.set_defaults(run=_retrieve)
    for command in (train, evaluate, predict):
        command.add_argument(
            "--max-image-pixels",
            type=_positive_int,
            help="images whose header gives more pixels (width x height) are bad posts, "
            "found before decoding (default 50000000)",
        )
    for command in (train, evaluate, predict):
        command.add_argument(
            "--verbose",
            type=int,
            choices=[0, 1, 2],
            default=1,
            help="0 silent, 1 progress bar and per-epoch tables (default), 2 one line per epoch",
        )
    for command in (train, evaluate, predict, export, serve, retrieve, ensemble, tune):
        command.add_argument(
            "--trust-saved-model",
            action="store_true",
            help="allow tf_hub encoders, whose SavedModel graph runs when built or loaded "
            "(as keras.models.load_model(..., safe_mode=False))",
        )
    for command in commands.choices.values():
        # A misspelt flag (`--epoch`) is an error, not silently another flag.
        command.allow_abbrev = False
        command.add_argument(
            "--tf-logs",
            action="store_true",
            default=os.environ.get(TF_LOGS_ENV, "") not in ("", "0"),
            help=f"show TensorFlow's start-up log lines (or set {TF_LOGS_ENV}=1)",
        )
    return parser


def _positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1. Received: {text!r}")
    return value


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow without its start-up log lines (oneDNN, CUDA drivers, CPU features).

    TF_CPP_MIN_LOG_LEVEL=3 hides what TensorFlow logs once absl logging is set
    up, but the lines written before that go straight to file descriptor 2
    whatever the level. So the import runs with descriptor 2 pointed at a
    temporary file, shown only if the import fails.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed, for written files
    if not args.tf_logs:
        _import_tensorflow_quietly()
    try:
        args.run(args)
    except MmtaskError as error:
        print(f"mmtask {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
