"""The seed's MNIST MLP (784-500-10, ReLU, Adam 1e-3, batch 64) as a plain PyTorch script, watched and
steered by nntui in four lines (marked `# nntui`).

    python examples/mnist_mlp.py                      # 8x8 digits from scikit-learn: offline, seconds on a CPU
    python examples/mnist_mlp.py --data mnist         # MNIST itself (torchvision downloads it)
    nntui run examples/mnist_mlp.py                   # the same under the live monitor
    nntui run examples/mnist_mlp.py --headless -- --epochs 3

While it trains, `nntui attach latest` shows it and `nntui ctl latest pause|resume|lr 3e-4|checkpoint|stop`
steers it, from another shell.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nntui  # nntui


def digits() -> tuple[TensorDataset, TensorDataset]:
    """scikit-learn's 8x8 digits, standardized, split 80/20."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    inputs = torch.tensor(images, dtype=torch.float32)
    inputs = (inputs - inputs.mean()) / inputs.std()
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))
    cut = int(0.8 * len(inputs))
    train, val = order[:cut], order[cut:]
    targets = torch.tensor(labels)
    return TensorDataset(inputs[train], targets[train]), TensorDataset(inputs[val], targets[val])


def mnist(root: str) -> tuple[TensorDataset, TensorDataset]:
    """MNIST as the seed reads it: ToTensor and Normalize((0.1307,), (0.3081,)), flattened."""
    from torchvision import datasets

    def split(train: bool) -> TensorDataset:
        data = datasets.MNIST(root, train=train, download=True)
        inputs = (data.data.float() / 255 - 0.1307) / 0.3081
        return TensorDataset(inputs.flatten(1), data.targets)

    return split(True), split(False)


def evaluate(model: nn.Module, loader: DataLoader) -> tuple[float, float]:
    """Mean loss and accuracy over `loader`."""
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in loader:
            outputs = model(inputs)
            loss_sum += nn.functional.cross_entropy(outputs, targets, reduction="sum").item()
            correct += (outputs.argmax(1) == targets).sum().item()
            count += len(targets)
    model.train()
    return loss_sum / count, correct / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("digits", "mnist"), default="digits")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    torch.manual_seed(0)
    train, val = digits() if args.data == "digits" else mnist(args.data_dir)
    train_loader = DataLoader(train, batch_size=64, shuffle=True)
    val_loader = DataLoader(val, batch_size=1000)
    model = nn.Sequential(nn.Linear(train.tensors[0].shape[1], 500), nn.ReLU(), nn.Linear(500, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    with nntui.Monitor(model, optimizer, config=vars(args), epochs=args.epochs,  # nntui
                       batch_size=64, train_size=len(train), val_size=len(val)) as monitor:
        for _ in range(args.epochs):
            for inputs, targets in train_loader:
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(inputs), targets)
                loss.backward()
                optimizer.step()
                monitor.step(loss=loss)  # nntui
                if monitor.should_stop:
                    break
            val_loss, val_acc = evaluate(model, val_loader)
            monitor.epoch(val_loss=val_loss, val_acc=val_acc)  # nntui
            print(f"val_loss {val_loss:.4f}  val_acc {val_acc:.4f}")
            if monitor.should_stop:
                break


if __name__ == "__main__":
    main()
