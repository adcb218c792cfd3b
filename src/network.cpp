// ResNet-18 layer graphs (CIFAR and ImageNet forms) and the Network/Layer helpers.
// See docs/workload.md for the layer table and the conventions (FC in conv form, naming).
#include "swpu/workload.hpp"

#include <cmath>
#include <stdexcept>

namespace swpu {

const char* to_string(LayerOp op) {
    switch (op) {
        case LayerOp::Conv: return "conv";
        case LayerOp::FC: return "fc";
        case LayerOp::BatchNorm: return "batchnorm";
        case LayerOp::ReLU: return "relu";
        case LayerOp::MaxPool: return "maxpool";
        case LayerOp::AvgPool: return "avgpool";
        case LayerOp::Add: return "add";
        case LayerOp::Loss: return "loss";
    }
    return "?";
}

const char* to_string(PruneMode m) {
    switch (m) {
        case PruneMode::Dense: return "dense";
        case PruneMode::Structured: return "structured";
        case PruneMode::Unstructured: return "unstructured";
        case PruneMode::ShapeOnly: return "shape-only";
        case PruneMode::LineOnly: return "line-only";
        case PruneMode::SubStructured: return "sub-structured";
    }
    return "?";
}

bool parse_prune_mode(const std::string& s, PruneMode& out) {
    static const PruneMode all[] = {PruneMode::Dense,     PruneMode::Structured, PruneMode::Unstructured,
                                    PruneMode::ShapeOnly, PruneMode::LineOnly,   PruneMode::SubStructured};
    for (PruneMode m : all) {
        if (s == to_string(m)) {
            out = m;
            return true;
        }
    }
    return false;
}

int64_t Layer::macs() const {
    switch (op) {
        case LayerOp::Conv: return int64_t(K) * C * R * S * P * Q;
        case LayerOp::FC: return int64_t(K) * fc_in;  // padding of the last block does no work
        default: return 0;                            // non-MAC work is the vector unit's
    }
}

int64_t Layer::params() const {
    switch (op) {
        case LayerOp::Conv: return int64_t(K) * C * R * S;
        case LayerOp::FC: return int64_t(K) * fc_in + K;  // weights + bias
        case LayerOp::BatchNorm: return 2 * int64_t(out_c);  // gamma, beta
        default: return 0;
    }
}

std::vector<int> Network::weighted_layers() const {
    std::vector<int> v;
    for (size_t i = 0; i < layers.size(); ++i)
        if (layers[i].weighted()) v.push_back(int(i));
    return v;
}

int Network::find(const std::string& layer_name) const {
    for (size_t i = 0; i < layers.size(); ++i)
        if (layers[i].name == layer_name) return int(i);
    return -1;
}

int64_t Network::total_macs() const {
    int64_t t = 0;
    for (const Layer& l : layers) t += l.macs();
    return t;
}

int64_t Network::total_params() const {
    int64_t t = 0;
    for (const Layer& l : layers) t += l.params();
    return t;
}

namespace {

// Limits that keep every derived size far from overflow and from absurd allocations.
constexpr double kMaxWidth = 16.0;
constexpr int kMaxInputHW = 4096;
constexpr int kMaxClasses = 1000000;

int out_dim(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

class Builder {
public:
    explicit Builder(Network& n) : net_(n) {}

    // Shape of the output of layer `idx` (-1 = network input).
    void shape_of(int idx, int& c, int& h, int& w) const {
        if (idx < 0) {
            c = net_.in_c;
            h = net_.in_h;
            w = net_.in_w;
        } else {
            const Layer& l = net_.layers[size_t(idx)];
            c = l.out_c;
            h = l.out_h;
            w = l.out_w;
        }
    }

    int add(Layer l) {
        net_.layers.push_back(std::move(l));
        return int(net_.layers.size()) - 1;
    }

    Layer base(const std::string& name, LayerOp op, int input) const {
        Layer l;
        l.name = name;
        l.op = op;
        l.inputs = {input};
        shape_of(input, l.in_c, l.in_h, l.in_w);
        return l;
    }

    // Element-wise layers (BN, ReLU, Add, Loss): C/H/W = input, K/P/Q = output, R = S = 1.
    int eltwise(const std::string& name, LayerOp op, std::vector<int> inputs) {
        Layer l = base(name, op, inputs.at(0));
        l.inputs = inputs;
        for (size_t i = 1; i < inputs.size(); ++i) {
            int c, h, w;
            shape_of(inputs[i], c, h, w);
            if (c != l.in_c || h != l.in_h || w != l.in_w)
                throw std::logic_error("build_network: operand shapes of '" + name + "' differ");
        }
        l.out_c = l.in_c;
        l.out_h = l.in_h;
        l.out_w = l.in_w;
        fill_eltwise_geometry(l);
        return add(std::move(l));
    }

    static void fill_eltwise_geometry(Layer& l) {
        l.C = l.in_c;
        l.H = l.in_h;
        l.W = l.in_w;
        l.K = l.out_c;
        l.P = l.out_h;
        l.Q = l.out_w;
        l.R = l.S = 1;
        l.stride = 1;
        l.pad = 0;
    }

    int conv(const std::string& name, int input, int K, int k, int stride, int pad) {
        Layer l = base(name, LayerOp::Conv, input);
        l.K = K;
        l.C = l.in_c;
        l.R = l.S = k;
        l.H = l.in_h;
        l.W = l.in_w;
        l.stride = stride;
        l.pad = pad;
        l.P = out_dim(l.H, k, stride, pad);
        l.Q = out_dim(l.W, k, stride, pad);
        if (l.P < 1 || l.Q < 1)
            throw std::invalid_argument("build_network: input too small for layer '" + name + "'");
        l.out_c = K;
        l.out_h = l.P;
        l.out_w = l.Q;
        return add(std::move(l));
    }

    int pool(const std::string& name, LayerOp op, int input, int kh, int kw, int stride, int pad) {
        Layer l = base(name, op, input);
        l.C = l.K = l.in_c;
        l.H = l.in_h;
        l.W = l.in_w;
        l.R = kh;
        l.S = kw;
        l.stride = stride;
        l.pad = pad;
        l.P = out_dim(l.H, kh, stride, pad);
        l.Q = out_dim(l.W, kw, stride, pad);
        if (l.P < 1 || l.Q < 1)
            throw std::invalid_argument("build_network: input too small for layer '" + name + "'");
        l.out_c = l.K;
        l.out_h = l.P;
        l.out_w = l.Q;
        return add(std::move(l));
    }

    int fc(const std::string& name, int input, int K, int B) {
        Layer l = base(name, LayerOp::FC, input);
        const int F = l.in_c * l.in_h * l.in_w;
        l.fc_in = F;
        l.K = K;
        l.C = (F + B - 1) / B;
        l.R = 1;
        l.S = B;
        l.H = 1;
        l.W = B;
        l.stride = 1;
        l.pad = 0;
        l.P = l.Q = 1;
        l.out_c = K;
        l.out_h = l.out_w = 1;
        return add(std::move(l));
    }

    // torchvision BasicBlock: conv3x3(s) - BN - ReLU - conv3x3 - BN (+ shortcut) - ReLU.
    int basic_block(const std::string& p, int input, int planes, int stride) {
        int in_c, in_h, in_w;
        shape_of(input, in_c, in_h, in_w);
        int c1 = conv(p + ".conv1", input, planes, 3, stride, 1);
        int b1 = eltwise(p + ".bn1", LayerOp::BatchNorm, {c1});
        int r1 = eltwise(p + ".relu1", LayerOp::ReLU, {b1});
        int c2 = conv(p + ".conv2", r1, planes, 3, 1, 1);
        int b2 = eltwise(p + ".bn2", LayerOp::BatchNorm, {c2});
        int shortcut = input;
        if (stride != 1 || in_c != planes) {
            int ds = conv(p + ".downsample", input, planes, 1, stride, 0);
            shortcut = eltwise(p + ".downsample.bn", LayerOp::BatchNorm, {ds});
        }
        int a = eltwise(p + ".add", LayerOp::Add, {b2, shortcut});
        return eltwise(p + ".relu2", LayerOp::ReLU, {a});
    }

private:
    Network& net_;
};

int scaled(int base, double width) {
    long v = std::lround(double(base) * width);
    return v < 1 ? 1 : int(v);
}

}  // namespace

Network build_network(const std::string& name, double width, int num_classes, int in_h, int in_w,
                      int fc_block) {
    const bool cifar = name == "resnet18-cifar";
    const bool imagenet = name == "resnet18-imagenet";
    if (!cifar && !imagenet)
        throw std::invalid_argument("unknown network '" + name +
                                    "' (known: resnet18-cifar, resnet18-imagenet)");
    if (!(std::isfinite(width) && width > 0 && width <= kMaxWidth))
        throw std::invalid_argument("network width must be in (0, " + std::to_string(int(kMaxWidth)) +
                                    "], got " + std::to_string(width));
    if (num_classes == -1) num_classes = cifar ? 10 : 1000;
    if (num_classes < 1 || num_classes > kMaxClasses)
        throw std::invalid_argument("num_classes must be in [1, " + std::to_string(kMaxClasses) + "], got " +
                                    std::to_string(num_classes));
    const int def_hw = cifar ? 32 : 224;
    if (in_h == -1) in_h = def_hw;
    if (in_w == -1) in_w = def_hw;
    if (in_h < 1 || in_h > kMaxInputHW || in_w < 1 || in_w > kMaxInputHW)
        throw std::invalid_argument("input height/width must be in [1, " + std::to_string(kMaxInputHW) +
                                    "], got " + std::to_string(in_h) + "x" + std::to_string(in_w));
    if (fc_block < 1 || fc_block > 64)
        throw std::invalid_argument("fc_block must be in [1, 64] (a line is one S-bit mask word), got " +
                                    std::to_string(fc_block));

    Network net;
    net.name = name;
    net.width = width;
    net.num_classes = num_classes;
    net.in_c = 3;
    net.in_h = in_h;
    net.in_w = in_w;
    net.fc_block = fc_block;

    Builder b(net);
    const int c64 = scaled(64, width);
    int x;
    if (cifar) {
        x = b.conv("conv1", -1, c64, 3, 1, 1);
        x = b.eltwise("bn1", LayerOp::BatchNorm, {x});
        x = b.eltwise("relu", LayerOp::ReLU, {x});
    } else {
        x = b.conv("conv1", -1, c64, 7, 2, 3);
        x = b.eltwise("bn1", LayerOp::BatchNorm, {x});
        x = b.eltwise("relu", LayerOp::ReLU, {x});
        x = b.pool("maxpool", LayerOp::MaxPool, x, 3, 3, 2, 1);
    }
    const int bases[4] = {64, 128, 256, 512};
    for (int s = 0; s < 4; ++s) {
        const int planes = scaled(bases[s], width);
        for (int blk = 0; blk < 2; ++blk) {
            const int stride = (s > 0 && blk == 0) ? 2 : 1;
            x = b.basic_block("layer" + std::to_string(s + 1) + "." + std::to_string(blk), x, planes, stride);
        }
    }
    {
        int c, h, w;
        b.shape_of(x, c, h, w);
        x = b.pool("avgpool", LayerOp::AvgPool, x, h, w, 1, 0);  // global average pooling
    }
    x = b.fc("fc", x, num_classes, fc_block);
    b.eltwise("loss", LayerOp::Loss, {x});
    Layer& loss = net.layers.back();  // softmax cross-entropy: one value per image
    loss.out_c = loss.out_h = loss.out_w = 1;
    Builder::fill_eltwise_geometry(loss);
    return net;
}

}  // namespace swpu
