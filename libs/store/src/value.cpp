#include "plexus/store/value.hpp"

namespace plexus::store {

std::string_view to_string(ValueType type) noexcept {
    switch (type) {
        case ValueType::null:
            return "NULL";
        case ValueType::integer:
            return "INTEGER";
        case ValueType::real:
            return "REAL";
        case ValueType::text:
            return "TEXT";
    }
    return "UNKNOWN";
}

void Value::throw_mismatch(ValueType want) const {
    throw TypeMismatch("expected " + std::string(to_string(want)) + ", the value is " +
                       std::string(to_string(type())));
}

const std::vector<std::string>& Row::columns() const noexcept {
    static const std::vector<std::string> none;
    return columns_ ? *columns_ : none;
}

const Value& Row::at(Column column) const {
    if (column.by_name()) {
        const auto& names = columns();
        for (std::size_t i = 0; i < names.size() && i < values_.size(); ++i) {
            if (names[i] == column.name()) return values_[i];
        }
        throw TypeMismatch("no column named '" + std::string(column.name()) + "' in the row");
    }
    if (column.index() >= values_.size()) {
        throw TypeMismatch("column " + std::to_string(column.index()) + " out of range (the row has " +
                           std::to_string(values_.size()) + ")");
    }
    return values_[column.index()];
}

}  // namespace plexus::store
